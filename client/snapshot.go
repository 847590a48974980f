package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dlock-raft/dlock/api/dlockv1"
)

// SaveSnapshot writes a backup of the cluster's whole state (locks with their holds and queues, leases,
// the fencing counter, keys, the deduplication table) to w and returns the Raft index the backup
// reflects. The backup is consistent as of a linearizable point: every write acknowledged before the
// call is in it. Any endpoint serves it, from its own replica once it has caught up. `dlock snapshot
// restore` seeds a new cluster from it.
//
// The backup is a file of this layout, every integer big-endian; SaveSnapshot checks all of it, the
// checksum included, as it arrives:
//
//	"DLOCKSNP" | version uint32 (1) | index uint64 | length uint64 | payload (length bytes) | SHA-256
//
// ctx bounds the whole transfer; each attempt must receive its first bytes within the call timeout
// (WithCallTimeout), else the next endpoint is tried. Once bytes have been written to w the call is not
// retried: on an error, discard what w received and call again.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) (index uint64, err error) {
	v := newSnapshotVerifier()
	err = c.call(ctx, fixed(TimeoutMax), func(ctx context.Context, cc *grpc.ClientConn) error {
		return c.snapshotAttempt(ctx, cc, w, v)
	})
	if err != nil {
		return 0, err
	}
	return v.index, nil
}

// errNoFirstChunk cancels an attempt that received nothing within the call timeout.
var errNoFirstChunk = errors.New("dlock: no snapshot data within the call timeout")

func (c *Client) snapshotAttempt(ctx context.Context, cc *grpc.ClientConn, w io.Writer, v *snapshotVerifier) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	first := time.AfterFunc(c.opts.callTimeout, func() { cancel(errNoFirstChunk) })
	defer first.Stop()
	stream, err := dlockv1.NewClusterClient(cc).Snapshot(actx, &dlockv1.SnapshotRequest{})
	for err == nil {
		var chunk *dlockv1.SnapshotChunk
		if chunk, err = stream.Recv(); err == nil {
			first.Stop()
			err = v.write(w, chunk.GetData())
		}
	}
	switch {
	case err == io.EOF:
		return v.finish()
	case v.n > 0:
		return &brokenSnapshotError{n: v.n, cause: mapError(err)}
	case ctx.Err() == nil && context.Cause(actx) == errNoFirstChunk:
		return status.Error(codes.DeadlineExceeded, errNoFirstChunk.Error()) // try the next endpoint
	}
	return err
}

// brokenSnapshotError ends a SaveSnapshot that failed after writing to w. It wraps the cause's sentinel
// (ErrUnavailable, a context error, ...) but not its gRPC status, so the call is not retried into w.
type brokenSnapshotError struct {
	n     int64
	cause error
}

func (e *brokenSnapshotError) Error() string {
	return fmt.Sprintf("dlock: snapshot broke off after %d bytes, which were written: %v", e.n, e.cause)
}

func (e *brokenSnapshotError) Unwrap() error { return errors.Unwrap(e.cause) }

const (
	snapshotMagic      = "DLOCKSNP"
	snapshotVersion    = 1
	snapshotHeaderSize = 8 + 4 + 8 + 8
)

// snapshotVerifier checks a backup as its bytes pass to the writer.
type snapshotVerifier struct {
	hdr   []byte
	index uint64
	total int64 // header, payload and checksum; 0 until the header is read
	n     int64 // bytes written so far
	h     hash.Hash
	sum   []byte
}

func newSnapshotVerifier() *snapshotVerifier {
	return &snapshotVerifier{h: sha256.New()}
}

func (v *snapshotVerifier) write(w io.Writer, p []byte) error {
	if v.total > 0 && v.n+int64(len(p)) > v.total {
		return fmt.Errorf("dlock: snapshot has more than the %d bytes its header promises", v.total)
	}
	if _, err := w.Write(p); err != nil {
		return &brokenSnapshotError{n: v.n, cause: fmt.Errorf("dlock: write snapshot: %w", err)}
	}
	for len(p) > 0 {
		var take int64
		switch body := v.total - sha256.Size; {
		case v.total == 0:
			take = min(int64(len(p)), snapshotHeaderSize-v.n)
			v.hdr = append(v.hdr, p[:take]...)
			v.h.Write(p[:take])
		case v.n < body:
			take = min(int64(len(p)), body-v.n)
			v.h.Write(p[:take])
		default:
			if v.n+int64(len(p)) > v.total {
				return fmt.Errorf("dlock: snapshot has more than the %d bytes its header promises", v.total)
			}
			take = int64(len(p))
			v.sum = append(v.sum, p...)
		}
		v.n += take
		p = p[take:]
		if v.total == 0 && v.n == snapshotHeaderSize {
			if err := v.header(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v *snapshotVerifier) header() error {
	if string(v.hdr[:8]) != snapshotMagic {
		return fmt.Errorf("dlock: not a dlock snapshot: it starts with %q", v.hdr[:8])
	}
	if ver := binary.BigEndian.Uint32(v.hdr[8:]); ver != snapshotVersion {
		return fmt.Errorf("dlock: snapshot format version %d; this client reads %d", ver, snapshotVersion)
	}
	v.index = binary.BigEndian.Uint64(v.hdr[12:])
	length := binary.BigEndian.Uint64(v.hdr[20:])
	if length > 1<<62 {
		return fmt.Errorf("dlock: snapshot header promises %d bytes", length)
	}
	v.total = snapshotHeaderSize + int64(length) + sha256.Size
	return nil
}

func (v *snapshotVerifier) finish() error {
	if v.total == 0 || v.n != v.total {
		return fmt.Errorf("dlock: snapshot ended after %d bytes; its header promises %d", v.n, v.total)
	}
	if !bytes.Equal(v.h.Sum(nil), v.sum) {
		return fmt.Errorf("dlock: snapshot checksum mismatch")
	}
	return nil
}
