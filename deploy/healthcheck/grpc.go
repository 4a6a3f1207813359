package main

import (
	"context"
	"crypto/tls"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/shardns/shardns/internal/tlsconf"
)

// probeGRPC asks the grpc.health.v1 service at addr about service ("" is
// the whole server) and wants SERVING. With tlsCfg the connection is TLS
// and the server is verified under tlsCfg.ServerName, else under addr's
// host; without, it is plaintext.
func probeGRPC(ctx context.Context, addr, service string, tlsCfg *tls.Config) error {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		// The channel's authority, the name verified, is tlsCfg's
		// ServerName when set, else addr.
		creds = tlsconf.GRPCClient(tlsCfg)
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("grpc: %w", err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("grpc: %s: %w", addr, err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("grpc: %s: service %q is %v", addr, service, s)
	}
	return nil
}
