// Command example calls token-authority from Go: issue -> introspect -> refresh -> reuse
// detected -> revoke-family.
//
// Usage: example HOST:PORT [API_KEY_FILE]
//
// The stubs are generated at build time, never committed, with Debian's protoc-gen-go and
// protoc-gen-go-grpc, and built offline in GOPATH mode against Debian's Go packages
// (golang-google-grpc-dev, golang-google-protobuf-dev in /usr/share/gocode):
//
//	G=$(mktemp -d); mkdir -p $G/src
//	protoc -I proto --go_out=$G/src --go-grpc_out=$G/src proto/tokenauthority/v1/token_authority.proto
//	GO111MODULE=off GOPROXY=off GOPATH=$G:/usr/share/gocode go run client/go/main.go 127.0.0.1:50051 data/admin.key
//
// Exits 0 when every step behaves as the API contract says, 1 on the first deviation.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ta "tokenauthority/v1"
)

const timeout = 10 * time.Second

// deviation is a step that did not behave as the contract says.
type deviation struct{ what string }

func (d deviation) Error() string { return d.what }

func expect(ok bool, format string, args ...interface{}) error {
	if ok {
		return nil
	}
	return deviation{fmt.Sprintf(format, args...)}
}

// reasonOf returns the machine-readable reason: the `ta-reason` trailer (never parse the
// message). gRPC-Go hands trailers to the grpc.Trailer call option, also on failure.
func reasonOf(trailer metadata.MD) string {
	if values := trailer.Get("ta-reason"); len(values) > 0 {
		return values[0]
	}
	return ""
}

type session struct {
	api    ta.TokenAuthorityClient
	apiKey string
}

// ctx carries the deadline and the API key (`authorization: Bearer ...`) of one call.
func (s *session) ctx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	if s.apiKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.apiKey)
	}
	return ctx, cancel
}

func (s *session) issue(subject string) (*ta.TokenPair, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.api.IssueTokens(ctx, &ta.IssueTokensRequest{
		Subject: subject, ClientId: "example-go", Scope: "read write",
		SessionMetadata: map[string]string{"device": "go-example"},
	})
}

func (s *session) introspect(token string) (*ta.IntrospectResponse, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.api.Introspect(ctx, &ta.IntrospectRequest{Token: token})
}

// refresh returns the trailing metadata too, for the reason of a refusal.
func (s *session) refresh(token string) (*ta.TokenPair, metadata.MD, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var trailer metadata.MD
	pair, err := s.api.RefreshTokens(ctx, &ta.RefreshTokensRequest{RefreshToken: token},
		grpc.Trailer(&trailer))
	return pair, trailer, err
}

func (s *session) revokeFamily(id string) (*ta.RevokeFamilyResponse, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	return s.api.RevokeFamily(ctx, &ta.RevokeFamilyRequest{FamilyId: id, Reason: "logout"})
}

func run(s *session) error {
	first, err := s.issue("alice-go")
	if err != nil {
		return err
	}
	if err := expect(first.AccessToken != "" && first.RefreshToken != "" && first.FamilyId != "",
		"issue: empty pair"); err != nil {
		return err
	}
	fmt.Println("issue: family", first.FamilyId)

	info, err := s.introspect(first.AccessToken)
	if err != nil {
		return err
	}
	if err := expect(info.Active && info.Subject == "alice-go" && info.FamilyId == first.FamilyId,
		"introspect: want active alice-go of %s, got %v", first.FamilyId, info); err != nil {
		return err
	}
	fmt.Println("introspect: active, subject", info.Subject)

	second, _, err := s.refresh(first.RefreshToken)
	if err != nil {
		return err
	}
	if err := expect(second.FamilyId == first.FamilyId && second.RefreshToken != first.RefreshToken,
		"refresh: not rotated within the family"); err != nil {
		return err
	}
	fmt.Println("refresh: rotated")

	_, trailer, err := s.refresh(first.RefreshToken)
	if err := expect(status.Code(err) == codes.Unauthenticated,
		"reuse: code %v, want Unauthenticated", status.Code(err)); err != nil {
		return err
	}
	if err := expect(reasonOf(trailer) == "refresh_token_reused",
		"reuse: reason %q, want refresh_token_reused", reasonOf(trailer)); err != nil {
		return err
	}
	if info, err = s.introspect(second.AccessToken); err != nil {
		return err
	}
	if err := expect(!info.Active, "reuse: the family's access token is still active"); err != nil {
		return err
	}
	fmt.Println("reuse: refused (refresh_token_reused), family revoked")

	again, err := s.revokeFamily(first.FamilyId)
	if err != nil {
		return err
	}
	if err := expect(!again.Changed, "revoke-family: a family revoked by reuse changed again"); err != nil {
		return err
	}
	other, err := s.issue("bob-go")
	if err != nil {
		return err
	}
	revoked, err := s.revokeFamily(other.FamilyId)
	if err != nil {
		return err
	}
	if info, err = s.introspect(other.AccessToken); err != nil {
		return err
	}
	if err := expect(revoked.Changed && !info.Active, "revoke-family: the session is still live"); err != nil {
		return err
	}
	fmt.Println("revoke-family: revoked", other.FamilyId)
	return nil
}

func main() { os.Exit(exitCode()) }

func exitCode() int {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: example HOST:PORT [API_KEY_FILE]")
		return 2
	}
	s := &session{}
	if len(os.Args) == 3 {
		key, err := os.ReadFile(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			return 1
		}
		s.apiKey = strings.TrimSpace(string(key))
	}
	// Plaintext for the local example; use grpc.WithTransportCredentials(credentials.NewTLS(...))
	// against a TLS server.
	conn, err := grpc.Dial(os.Args[1], grpc.WithInsecure())
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer conn.Close()
	s.api = ta.NewTokenAuthorityClient(conn)
	if err := run(s); err != nil {
		var d deviation
		if errors.As(err, &d) {
			fmt.Fprintln(os.Stderr, "FAIL:", d)
		} else {
			fmt.Fprintf(os.Stderr, "FAIL: unexpected error %v: %s\n", status.Code(err),
				status.Convert(err).Message())
		}
		return 1
	}
	fmt.Println("ok")
	return 0
}
