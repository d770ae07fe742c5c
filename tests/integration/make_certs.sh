#!/usr/bin/env bash
# make_certs.sh DIR: a test PKI. ca/ signs server (localhost, 127.0.0.1) and client
# (CN=gateway, SAN URI spiffe://test/gateway); other-ca/ signs a rogue client with the same CN.
# id-uri, id-dns, id-email, id-ip carry one SAN of that type (and CN=nobody); id-cn has no SAN;
# attack-dns and attack-email carry an identity's text in the wrong place (issue 12).
set -euo pipefail
cd "$1"
days=2
cat > ext.cnf <<'CNF'
[server]
subjectAltName = DNS:localhost, IP:127.0.0.1
extendedKeyUsage = serverAuth
[client]
subjectAltName = URI:spiffe://test/gateway
extendedKeyUsage = clientAuth
[id-uri]
subjectAltName = URI:spiffe://test/ops
extendedKeyUsage = clientAuth
[id-dns]
subjectAltName = DNS:ops.test
extendedKeyUsage = clientAuth
[id-email]
subjectAltName = email:ops@test.example
extendedKeyUsage = clientAuth
[id-ip]
subjectAltName = IP:10.9.8.7
extendedKeyUsage = clientAuth
[id-cn]
extendedKeyUsage = clientAuth
[attack-dns]
subjectAltName = DNS:dev-box.example
extendedKeyUsage = clientAuth
[attack-email]
subjectAltName = email:spiffe://test/ops
extendedKeyUsage = clientAuth
CNF
ca() {  # ca NAME
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
    -subj "/CN=$1" -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
leaf() {  # leaf NAME CN CA EXT
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days $days \
    -extfile ext.cnf -extensions "$4" -out "$1.pem" 2>/dev/null
}
ca ca
ca other-ca
leaf server localhost ca server
leaf client gateway ca client
leaf rogue gateway other-ca client
for kind in uri dns email ip; do leaf "id-$kind" nobody ca "id-$kind"; done
leaf id-cn ops-cn ca id-cn
leaf attack-dns 'spiffe:\/\/test\/ops' ca attack-dns  # "/" escaped for -subj
leaf attack-email nobody ca attack-email
