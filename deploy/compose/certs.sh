#!/usr/bin/env bash
# certs.sh writes what compose.yaml needs and no image holds: a private CA, a certificate per
# worker (serverAuth and clientAuth: the same one serves HTTPS and Raft's mutual TLS, naming
# the worker, localhost and 127.0.0.1 so that the image's HEALTHCHECK can verify it), and .env
# with a random admin token. It keeps what exists; delete certs/ and .env to start over.
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p certs
if [[ ! -f certs/ca.pem ]]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
		-subj "/CN=mongorelay compose CA" -keyout certs/ca-key.pem -out certs/ca.pem
fi
for node in mongorelay1 mongorelay2 mongorelay3; do
	[[ -f certs/$node.pem ]] && continue
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$node" \
		-keyout "certs/$node-key.pem" -out "certs/$node.csr"
	openssl x509 -req -in "certs/$node.csr" -CA certs/ca.pem -CAkey certs/ca-key.pem -CAcreateserial \
		-days 825 -out "certs/$node.pem" -extfile <(printf '%s\n' \
			"subjectAltName=DNS:$node,DNS:localhost,IP:127.0.0.1" \
			"extendedKeyUsage=serverAuth,clientAuth" "keyUsage=digitalSignature")
	rm "certs/$node.csr"
done
# The workers run as uid 65532 (distroless nonroot): they must read their keys.
chmod 0755 certs && chmod 0644 certs/*.pem && chmod 0600 certs/ca-key.pem
if [[ ! -f .env ]]; then
	printf 'MONGORELAY_HTTP_AUTH_TOKEN=%s\n' "$(openssl rand -hex 32)" > .env
fi
echo "certs/ and .env ready"
