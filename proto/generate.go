// Package proto holds shardns's gRPC contracts. The generated Go code lives in
// resolverv1 and corednsv1; regenerate it with `go generate ./proto` (needs
// protoc, protoc-gen-go and protoc-gen-go-grpc on PATH).
package proto

//go:generate protoc -I . --go_out=. --go_opt=module=github.com/shardns/shardns/proto --go-grpc_out=. --go-grpc_opt=module=github.com/shardns/shardns/proto resolver.proto coredns.proto
