package server

import (
	"bufio"
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
)

// snapshotChunkBytes is the size of the chunks a snapshot is streamed in,
// well under gRPC's default 4 MiB message limit.
const snapshotChunkBytes = 256 << 10

// errNoReadIndex is the cause when no snapshot data was ready within the
// write timeout: the node found no leader to confirm a read index.
var errNoReadIndex = errors.New("dlock: no read index within the write timeout")

// Snapshot streams a consistent copy of the whole state as of a
// linearizable point (see node.SaveSnapshot), in chunks of
// snapshotChunkBytes. It counts as one request in flight. Finding the read
// index is bounded by the write timeout, as a linearizable read is; the
// transfer itself by the caller's context only. The node holds one encoded
// copy of the state in memory during the call.
func (s clusterService) Snapshot(req *dlockv1.SnapshotRequest, stream dlockv1.Cluster_SnapshotServer) error {
	_, err := s.limitInflight(stream.Context(), req, nil, func(ctx context.Context, _ any) (any, error) {
		return nil, s.streamSnapshot(ctx, stream)
	})
	return err
}

func (s clusterService) streamSnapshot(caller context.Context, stream dlockv1.Cluster_SnapshotServer) error {
	ctx, cancel := context.WithCancelCause(caller)
	defer cancel(nil)
	// Until the first byte is ready, the node is finding a read index and
	// waiting to apply it: bound that by the write timeout.
	timer := time.AfterFunc(s.opts.WriteTimeout, func() { cancel(errNoReadIndex) })
	cw := &chunkWriter{stream: stream, started: func() { timer.Stop() }}
	defer timer.Stop()
	bw := bufio.NewWriterSize(cw, snapshotChunkBytes)
	index, err := s.node.SaveSnapshot(ctx, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		s.log.Info("snapshot streamed", "index", index, "bytes", cw.sent)
		return nil
	}
	if caller.Err() == nil && context.Cause(ctx) == errNoReadIndex {
		return statusError(codes.Unavailable, dlockv1.ReasonNoLeader, "dlock: snapshot: "+errNoReadIndex.Error()+": "+err.Error())
	}
	if cw.sent > 0 || cw.err != nil {
		return err // the stream broke; gRPC reports its own status
	}
	return nodeError(err)
}

// chunkWriter sends what is written to it as SnapshotChunk messages of at
// most snapshotChunkBytes.
type chunkWriter struct {
	stream  dlockv1.Cluster_SnapshotServer
	started func() // called before the first chunk is sent
	sent    int64
	err     error
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	if w.sent == 0 && w.started != nil {
		w.started()
		w.started = nil
	}
	n := 0
	for len(p) > 0 {
		c := p[:min(len(p), snapshotChunkBytes)]
		if err := w.stream.Send(&dlockv1.SnapshotChunk{Data: c}); err != nil {
			w.err = err
			return n, err
		}
		n += len(c)
		w.sent += int64(len(c))
		p = p[len(c):]
	}
	return n, nil
}
