package rpc_test

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

func TestHealthServing(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			conn, hs := tr.dial(t, newService(t, writeZone(t)))
			client := healthpb.NewHealthClient(conn)
			for _, svc := range []string{"", "shardns.resolver.v1.Resolver"} {
				resp, err := client.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: svc})
				if err != nil {
					t.Fatalf("Check(%q): %v", svc, err)
				}
				if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Errorf("Check(%q) = %v, want SERVING", svc, resp.GetStatus())
				}
			}
			if _, err := client.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: "no.such.Service"}); status.Code(err) != codes.NotFound {
				t.Errorf("Check of an unknown service: %v, want NotFound", err)
			}
			// Shutdown (what resolverd does before it stops) takes it out.
			hs.Shutdown()
			resp, err := client.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: "shardns.resolver.v1.Resolver"})
			if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Errorf("after Shutdown: %v %v, want NOT_SERVING", resp.GetStatus(), err)
			}
		})
	}
}

func TestReflectionListsServices(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			conn, _ := tr.dial(t, newService(t, writeZone(t)))
			stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(callCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&reflectionpb.ServerReflectionRequest{
				MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
			}); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range resp.GetListServicesResponse().GetService() {
				names = append(names, s.GetName())
			}
			for _, want := range []string{"shardns.resolver.v1.Resolver", "coredns.dns.DnsService", "grpc.health.v1.Health"} {
				if !slices.Contains(names, want) {
					t.Errorf("reflection lists %v, missing %s", names, want)
				}
			}
			// The descriptors are there too, so grpcurl can call Resolve.
			for _, sym := range []string{"shardns.resolver.v1.Resolver", "coredns.dns.DnsService"} {
				if err := stream.Send(&reflectionpb.ServerReflectionRequest{
					MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: sym},
				}); err != nil {
					t.Fatal(err)
				}
				resp, err := stream.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if e := resp.GetErrorResponse(); e != nil || len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
					t.Errorf("no descriptor for %s: %v", sym, e)
				}
			}
			if err := stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
