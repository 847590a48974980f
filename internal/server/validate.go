package server

import (
	"fmt"
	"time"
)

// checkName refuses an empty or over-long lock name or key.
func (s *Server) checkName(field, v string) error {
	if v == "" {
		return invalid(field + " is empty")
	}
	if len(v) > s.opts.Limits.NameBytesMax {
		return invalid(fmt.Sprintf("%s is %d bytes, over limits.name_bytes_max %d", field, len(v), s.opts.Limits.NameBytesMax))
	}
	return nil
}

// checkTTL refuses a lease <= 0 (unless zero is allowed) or over lease_max.
func (s *Server) checkTTL(ms int64, zeroOK bool) error {
	if ms < 0 || (ms == 0 && !zeroOK) {
		if zeroOK {
			return invalid(fmt.Sprintf("ttl_ms %d must be >= 0 (0 keeps the hold's TTL)", ms))
		}
		return invalid(fmt.Sprintf("ttl_ms %d must be > 0", ms))
	}
	// Compared in milliseconds: a huge ttl_ms would overflow in nanoseconds.
	if max := s.opts.Limits.LeaseMax.Duration(); ms > max.Milliseconds() {
		return invalid(fmt.Sprintf("ttl_ms %d is over limits.lease_max %s", ms, max))
	}
	return nil
}

// checkWait refuses a negative wait or one over acquire_timeout_max.
func (s *Server) checkWait(ms int64) error {
	if ms < 0 {
		return invalid(fmt.Sprintf("wait_ms %d must be >= 0", ms))
	}
	if max := s.opts.Limits.AcquireTimeoutMax.Duration(); ms > max.Milliseconds() {
		return invalid(fmt.Sprintf("wait_ms %d is over limits.acquire_timeout_max %s", ms, max))
	}
	return nil
}

func (s *Server) checkValue(v []byte) error {
	if len(v) > s.opts.Limits.ValueBytesMax {
		return invalid(fmt.Sprintf("value is %d bytes, over limits.value_bytes_max %d", len(v), s.opts.Limits.ValueBytesMax))
	}
	return nil
}

// pageSize turns a requested limit into a page size.
func pageSize(limit uint32) int {
	const defaultPage, pageMax = 1000, 10000
	switch {
	case limit == 0:
		return defaultPage
	case limit > pageMax:
		return pageMax
	}
	return int(limit)
}

func ms(d int64) time.Duration { return time.Duration(d) * time.Millisecond }
