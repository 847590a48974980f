package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/dlock-raft/dlock/internal/config"
	"github.com/dlock-raft/dlock/internal/mtls"
	"github.com/dlock-raft/dlock/internal/node"
)

// loadTLS reads the planes' TLS files the config names; a plane without
// them stays plaintext (nil). Errors name the key.
func loadTLS(cfg *config.Config, logger *slog.Logger) (node.PeerTLS, *tls.Config, error) {
	peer, client, err := mtls.FromConfig(cfg.TLS, logger)
	if err != nil {
		return nil, nil, fmt.Errorf("dlock: %w", err)
	}
	var peerTLS node.PeerTLS
	var clientTLS *tls.Config
	if peer != nil {
		peerTLS = peer
	}
	if client != nil {
		clientTLS = client.ServerConfig()
	}
	logger.Info("transport security", "peer_tls", peer != nil, "client_tls", client != nil)
	return peerTLS, clientTLS, nil
}
