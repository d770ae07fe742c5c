// token-authority from Java: issue -> introspect -> refresh -> reuse detected -> revoke-family.
//
// Usage: java -cp CLASSPATH Example HOST:PORT [API_KEY_FILE]
//
// The stubs are generated, never committed, with Debian's protoc and grpc_java_plugin, and
// compiled against Debian's jars (libgrpc-java, libprotobuf-java, libnetty-java, ...) with
// javac; tests/client/run_example.sh java shows the exact class path:
//
//   protoc -I proto --java_out=OUT --grpc-java_out=OUT \
//       --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin \
//       proto/tokenauthority/v1/token_authority.proto
//   javac -cp "$CP" -d OUT/classes $(find OUT -name '*.java') client/java/Example.java
//   java -cp "OUT/classes:$CP" Example 127.0.0.1:50051 data/admin.key
//
// Exits 0 when every step behaves as the API contract says, 1 on the first deviation.

import dev.tokenauthority.v1.IntrospectRequest;
import dev.tokenauthority.v1.IntrospectResponse;
import dev.tokenauthority.v1.IssueTokensRequest;
import dev.tokenauthority.v1.RefreshTokensRequest;
import dev.tokenauthority.v1.RevokeFamilyRequest;
import dev.tokenauthority.v1.TokenAuthorityGrpc;
import dev.tokenauthority.v1.TokenPair;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

public final class Example {
  private static final long TIMEOUT_SECONDS = 10;
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  private static final Metadata.Key<String> TA_REASON =
      Metadata.Key.of("ta-reason", Metadata.ASCII_STRING_MARSHALLER);

  /** A step did not behave as the contract says. */
  private static final class Deviation extends Exception {
    Deviation(String what) {
      super(what);
    }
  }

  private static void expect(boolean condition, String what) throws Deviation {
    if (!condition) {
      throw new Deviation(what);
    }
  }

  /** The machine-readable reason: the `ta-reason` trailer (never parse the message). */
  private static String reasonOf(StatusRuntimeException error) {
    Metadata trailers = Status.trailersFromThrowable(error);
    String reason = trailers == null ? null : trailers.get(TA_REASON);
    return reason == null ? "" : reason;
  }

  private final TokenAuthorityGrpc.TokenAuthorityBlockingStub stub;

  private Example(ManagedChannel channel, String apiKey) {
    TokenAuthorityGrpc.TokenAuthorityBlockingStub base = TokenAuthorityGrpc.newBlockingStub(channel);
    if (!apiKey.isEmpty()) {
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + apiKey);
      base = base.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    }
    stub = base;
  }

  /** The stub with a fresh deadline: a deadline is absolute, so each call needs its own. */
  private TokenAuthorityGrpc.TokenAuthorityBlockingStub call() {
    return stub.withDeadlineAfter(TIMEOUT_SECONDS, TimeUnit.SECONDS);
  }

  private TokenPair issue(String subject) {
    return call().issueTokens(IssueTokensRequest.newBuilder()
        .setSubject(subject)
        .setClientId("example-java")
        .setScope("read write")
        .putSessionMetadata("device", "java-example")
        .build());
  }

  private boolean active(String token) {
    return call().introspect(IntrospectRequest.newBuilder().setToken(token).build()).getActive();
  }

  private TokenPair refresh(String token) {
    return call().refreshTokens(RefreshTokensRequest.newBuilder().setRefreshToken(token).build());
  }

  private boolean revokeFamily(String familyId) {
    return call()
        .revokeFamily(
            RevokeFamilyRequest.newBuilder().setFamilyId(familyId).setReason("logout").build())
        .getChanged();
  }

  private void run() throws Deviation {
    TokenPair first = issue("alice-java");
    expect(!first.getAccessToken().isEmpty() && !first.getRefreshToken().isEmpty()
            && !first.getFamilyId().isEmpty(), "issue: empty pair");
    System.out.println("issue: family " + first.getFamilyId());

    IntrospectResponse info = call().introspect(
        IntrospectRequest.newBuilder().setToken(first.getAccessToken()).build());
    expect(info.getActive(), "introspect: fresh access token is not active");
    expect(info.getSubject().equals("alice-java"), "introspect: wrong subject " + info.getSubject());
    expect(info.getFamilyId().equals(first.getFamilyId()), "introspect: wrong family");
    System.out.println("introspect: active, subject " + info.getSubject());

    TokenPair second = refresh(first.getRefreshToken());
    expect(second.getFamilyId().equals(first.getFamilyId()), "refresh: family changed");
    expect(!second.getRefreshToken().equals(first.getRefreshToken()), "refresh: not rotated");
    System.out.println("refresh: rotated");

    try {
      refresh(first.getRefreshToken());
      throw new Deviation("reuse: a spent refresh token was accepted");
    } catch (StatusRuntimeException error) {
      expect(error.getStatus().getCode() == Status.Code.UNAUTHENTICATED,
          "reuse: code " + error.getStatus().getCode() + ", want UNAUTHENTICATED");
      expect(reasonOf(error).equals("refresh_token_reused"),
          "reuse: reason \"" + reasonOf(error) + "\", want refresh_token_reused");
    }
    expect(!active(second.getAccessToken()), "reuse: the family's access token is still active");
    System.out.println("reuse: refused (refresh_token_reused), family revoked");

    expect(!revokeFamily(first.getFamilyId()),
        "revoke-family: a family revoked by reuse changed again");
    TokenPair other = issue("bob-java");
    expect(revokeFamily(other.getFamilyId()), "revoke-family: a live family did not change");
    expect(!active(other.getAccessToken()), "revoke-family: access token still active");
    System.out.println("revoke-family: revoked " + other.getFamilyId());
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 1 || args.length > 2) {
      System.err.println("usage: Example HOST:PORT [API_KEY_FILE]");
      System.exit(2);
    }
    String apiKey = args.length == 2
        ? Files.readString(Path.of(args[1]), StandardCharsets.US_ASCII).strip()
        : "";
    // Plaintext for the local example; useTransportSecurity() against a TLS server.
    ManagedChannel channel = ManagedChannelBuilder.forTarget(args[0]).usePlaintext().build();
    int code = 0;
    try {
      new Example(channel, apiKey).run();
      System.out.println("ok");
    } catch (Deviation deviation) {
      System.err.println("FAIL: " + deviation.getMessage());
      code = 1;
    } catch (StatusRuntimeException error) {
      System.err.println("FAIL: unexpected error " + error.getStatus().getCode() + " "
          + reasonOf(error) + ": " + error.getStatus().getDescription());
      code = 1;
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    System.exit(code);
  }
}
