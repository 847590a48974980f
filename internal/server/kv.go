package server

import (
	"context"

	"google.golang.org/grpc/codes"

	dlockv1 "github.com/dlock-raft/dlock/api/dlockv1"
	"github.com/dlock-raft/dlock/internal/fsm"
	"github.com/dlock-raft/dlock/internal/fsm/fsmpb"
)

// kvService implements dlockv1.KVServer.
type kvService struct {
	dlockv1.UnimplementedKVServer
	*Server
}

// Put stores a value (an empty value is a value).
func (s kvService) Put(ctx context.Context, req *dlockv1.PutRequest) (*dlockv1.PutResponse, error) {
	if err := s.checkName("key", req.Key); err != nil {
		return nil, err
	}
	if err := s.checkValue(req.Value); err != nil {
		return nil, err
	}
	value := req.Value
	if value == nil {
		value = []byte{}
	}
	res, _, err := s.propose1(ctx, withHeader(req.Header, &fsmpb.Command{Op: &fsmpb.Command_Put{Put: &fsmpb.Put{Key: req.Key, Value: value}}}))
	if err != nil {
		return nil, err
	}
	if res.Code != fsmpb.Code_OK {
		return nil, resultError(res)
	}
	return &dlockv1.PutResponse{Created: res.Created}, nil
}

// Get reads a value; NotFound if the key is missing.
func (s kvService) Get(ctx context.Context, req *dlockv1.GetRequest) (*dlockv1.GetResponse, error) {
	if err := s.checkName("key", req.Key); err != nil {
		return nil, err
	}
	var v []byte
	var ok bool
	if err := s.read(ctx, req.Stale, func(st *fsm.State) {
		v, ok = st.Get(req.Key)
		v = append([]byte{}, v...)
	}); err != nil {
		return nil, err
	}
	if !ok {
		return nil, statusError(codes.NotFound, dlockv1.ReasonNotFound, "dlock: key "+quote(req.Key)+" not found")
	}
	return &dlockv1.GetResponse{Value: v}, nil
}

// Delete removes a key; NotFound if it is missing.
func (s kvService) Delete(ctx context.Context, req *dlockv1.DeleteRequest) (*dlockv1.DeleteResponse, error) {
	if err := s.checkName("key", req.Key); err != nil {
		return nil, err
	}
	res, _, err := s.propose1(ctx, withHeader(req.Header, &fsmpb.Command{Op: &fsmpb.Command_Delete{Delete: &fsmpb.Delete{Key: req.Key}}}))
	if err != nil {
		return nil, err
	}
	if res.Code != fsmpb.Code_OK {
		return nil, resultError(res)
	}
	return &dlockv1.DeleteResponse{}, nil
}

// List reports keys (and values unless keys_only) in key order.
func (s kvService) List(ctx context.Context, req *dlockv1.ListKeysRequest) (*dlockv1.ListKeysResponse, error) {
	var recs []*fsmpb.KVRecord
	var more bool
	if err := s.read(ctx, req.Stale, func(st *fsm.State) {
		recs, more = st.Keys(req.Prefix, req.StartAfter, pageSize(req.Limit), req.KeysOnly)
	}); err != nil {
		return nil, err
	}
	resp := &dlockv1.ListKeysResponse{More: more}
	for _, r := range recs {
		resp.Kvs = append(resp.Kvs, &dlockv1.KeyValue{Key: r.Key, Value: r.Value})
	}
	return resp, nil
}
