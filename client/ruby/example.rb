#!/usr/bin/ruby
# frozen_string_literal: true

# token-authority from Ruby: issue -> introspect -> refresh -> reuse detected -> revoke-family.
#
# Usage: example.rb HOST:PORT [API_KEY_FILE]
#
# The stubs are generated, never committed, with Debian's grpc_tools_ruby_protoc
# (ruby-grpc-tools) and run on Debian's ruby-grpc and ruby-google-protobuf:
#
#   grpc_tools_ruby_protoc -I proto --ruby_out=OUT --grpc_out=OUT \
#       proto/tokenauthority/v1/token_authority.proto
#   ruby -I OUT client/ruby/example.rb 127.0.0.1:50051 data/admin.key
#
# Exits 0 when every step behaves as the API contract says, 1 on the first deviation.

require 'grpc'
require 'tokenauthority/v1/token_authority_services_pb'

TIMEOUT_S = 10
Api = Tokenauthority::V1

# A step did not behave as the contract says.
class Deviation < StandardError; end

def expect(condition, what)
  raise Deviation, what unless condition
end

# The machine-readable reason: the `ta-reason` trailer (never parse the message). Ruby's gRPC
# puts a failed call's trailing metadata on the GRPC::BadStatus it raises.
def reason_of(error)
  error.metadata.fetch('ta-reason', '')
end

# Every call with the API key (`authorization: Bearer ...`) and its own deadline.
class Session
  def initialize(address, api_key)
    @stub = Api::TokenAuthority::Stub.new(address, :this_channel_is_insecure)
    @metadata = api_key.empty? ? {} : { 'authorization' => "Bearer #{api_key}" }
  end

  def call(method, request)
    @stub.public_send(method, request, metadata: @metadata, deadline: Time.now + TIMEOUT_S)
  end

  def issue(subject)
    call(:issue_tokens, Api::IssueTokensRequest.new(
                          subject: subject, client_id: 'example-ruby', scope: 'read write',
                          session_metadata: { 'device' => 'ruby-example' }
                        ))
  end

  def introspect(token)
    call(:introspect, Api::IntrospectRequest.new(token: token))
  end

  def refresh(token)
    call(:refresh_tokens, Api::RefreshTokensRequest.new(refresh_token: token))
  end

  def revoke_family(family_id)
    call(:revoke_family, Api::RevokeFamilyRequest.new(family_id: family_id, reason: 'logout'))
  end
end

def expect_reuse_refused(session, spent)
  session.refresh(spent)
  raise Deviation, 'reuse: a spent refresh token was accepted'
rescue GRPC::BadStatus => e
  expect(e.code == GRPC::Core::StatusCodes::UNAUTHENTICATED,
         "reuse: code #{e.code}, want UNAUTHENTICATED")
  expect(reason_of(e) == 'refresh_token_reused',
         "reuse: reason #{reason_of(e).inspect}, want refresh_token_reused")
end

def run(session)
  first = session.issue('alice-ruby')
  expect(!first.access_token.empty? && !first.refresh_token.empty? && !first.family_id.empty?,
         'issue: empty pair')
  puts "issue: family #{first.family_id}"

  info = session.introspect(first.access_token)
  expect(info.active, 'introspect: fresh access token is not active')
  expect(info.subject == 'alice-ruby', "introspect: wrong subject #{info.subject}")
  expect(info.family_id == first.family_id, 'introspect: wrong family')
  puts "introspect: active, subject #{info.subject}"

  second = session.refresh(first.refresh_token)
  expect(second.family_id == first.family_id, 'refresh: family changed')
  expect(second.refresh_token != first.refresh_token, 'refresh: token not rotated')
  puts 'refresh: rotated'

  expect_reuse_refused(session, first.refresh_token)
  expect(!session.introspect(second.access_token).active,
         "reuse: the family's access token is still active")
  puts 'reuse: refused (refresh_token_reused), family revoked'

  expect(!session.revoke_family(first.family_id).changed,
         'revoke-family: a family revoked by reuse changed again')
  other = session.issue('bob-ruby')
  expect(session.revoke_family(other.family_id).changed,
         'revoke-family: a live family did not change')
  expect(!session.introspect(other.access_token).active,
         'revoke-family: access token still active')
  puts "revoke-family: revoked #{other.family_id}"
end

def main(argv)
  unless [1, 2].include?(argv.size)
    warn 'usage: example.rb HOST:PORT [API_KEY_FILE]'
    return 2
  end
  api_key = argv.size == 2 ? File.read(argv[1]).strip : ''
  run(Session.new(argv[0], api_key))
  puts 'ok'
  0
rescue Deviation => e
  warn "FAIL: #{e.message}"
  1
rescue GRPC::BadStatus => e
  warn "FAIL: unexpected error #{e.code} #{reason_of(e)}: #{e.details}"
  1
end

exit(main(ARGV))
