package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"software.sslmate.com/src/go-pkcs12"
)

// tlsConfig builds the TLS config of SSL and SASL_SSL (nil for the other protocols).
func (s Security) tlsConfig() (*tls.Config, []error) {
	if !s.usesTLS() {
		return nil, given(unusedUnder(s.Protocol, "SSL (or SASL_SSL)"), KeyCA, s.CA, KeyCertificate, s.Certificate, KeyKey, s.Key,
			KeyEndpointAlgorithm, unlessDefault(s.EndpointAlgorithm, "https"), KeyTruststore, s.Truststore,
			KeyTruststorePassword, s.TruststorePassword, KeyTruststoreType, unlessDefault(s.TruststoreType, "PKCS12", ""),
			KeyKeystore, s.Keystore, KeyKeystorePassword, s.KeystorePassword, KeyKeystoreType, unlessDefault(s.KeystoreType, "PKCS12", ""))
	}
	var problems []error
	if s.EndpointAlgorithm != "https" && s.EndpointAlgorithm != "" {
		problems = append(problems, problem(KeyEndpointAlgorithm, "%q is not https (check the broker's host name) or empty (do not)", s.EndpointAlgorithm))
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	roots, p := s.roots()
	problems = append(problems, p...)
	cert, p := s.clientCertificate()
	problems = append(problems, p...)
	if len(problems) > 0 {
		return nil, problems
	}
	cfg.RootCAs = roots
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	if s.EndpointAlgorithm == "" {
		// Still verify the chain, against the same roots, without the host name.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the broker sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return cfg, nil
}

// roots are the CAs to trust: kafka.ssl.ca.location's, the truststore's, or the system's (nil).
func (s Security) roots() (*x509.CertPool, []error) {
	var problems []error
	if s.TruststorePassword != "" && s.Truststore == "" {
		problems = append(problems, problem(KeyTruststorePassword, "does nothing without %s: remove it", KeyTruststore))
	}
	if s.TruststoreType != "" && s.TruststoreType != "PKCS12" && s.Truststore == "" {
		problems = append(problems, problem(KeyTruststoreType, "does nothing without %s: remove it", KeyTruststore))
	}
	switch {
	case s.CA != "" && s.Truststore != "":
		return nil, append(problems, problem(KeyCA, "and %s both name the CAs to trust: keep one", KeyTruststore))
	case s.CA != "":
		pool, err := pemPool(s.CA)
		return keyed(problems, KeyCA, pool, err)
	case s.Truststore != "":
		pool, err := truststore(s.Truststore, s.TruststorePassword, s.TruststoreType)
		return keyed(problems, KeyTruststore, pool, err)
	}
	return nil, problems
}

func pemPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

func truststore(file, password, typ string) (*x509.CertPool, error) {
	switch strings.ToUpper(typ) {
	case "PEM":
		return pemPool(file)
	case "", "PKCS12":
	default:
		return nil, storeType(KeyTruststoreType, typ, file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	certs, err := pkcs12.DecodeTrustStore(data, password)
	if err != nil {
		return nil, fmt.Errorf("read %s as PKCS12 (password in %s): %w", file, KeyTruststorePassword, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// storeType refuses a Java store type other than PKCS12 and PEM.
func storeType(key, typ, file string) error {
	return fmt.Errorf("%s=%s is not supported: give PKCS12 or PEM (convert a JKS store with keytool -importkeystore -srckeystore %s -destkeystore %s.p12 -deststoretype PKCS12)",
		key, typ, file, strings.TrimSuffix(file, ".jks"))
}

// clientCertificate is the certificate the client shows brokers that ask for one, or nil.
func (s Security) clientCertificate() (*tls.Certificate, []error) {
	var problems []error
	if s.KeystorePassword != "" && s.Keystore == "" {
		problems = append(problems, problem(KeyKeystorePassword, "does nothing without %s: remove it", KeyKeystore))
	}
	if s.KeystoreType != "" && s.KeystoreType != "PKCS12" && s.Keystore == "" {
		problems = append(problems, problem(KeyKeystoreType, "does nothing without %s: remove it", KeyKeystore))
	}
	if (s.Certificate != "" || s.Key != "") && s.Keystore != "" {
		return nil, append(problems, problem(KeyKeystore, "and %s/%s both give the client certificate: keep one", KeyCertificate, KeyKey))
	}
	switch {
	case s.Certificate != "" && s.Key == "":
		return nil, append(problems, problem(KeyKey, "is required with %s: give the certificate's PEM private key", KeyCertificate))
	case s.Key != "" && s.Certificate == "":
		return nil, append(problems, problem(KeyCertificate, "is required with %s: give the key's PEM certificate", KeyKey))
	case s.Certificate != "":
		cert, err := tls.LoadX509KeyPair(s.Certificate, s.Key)
		return keyed(problems, KeyCertificate, &cert, err)
	case s.Keystore != "":
		cert, err := keystore(s.Keystore, s.KeystorePassword, s.KeystoreType)
		return keyed(problems, KeyKeystore, cert, err)
	}
	return nil, problems
}

// keyed returns v and problems, or, when loading v failed, nil and problems with err as key's.
func keyed[T any](problems []error, key string, v *T, err error) (*T, []error) {
	if err != nil {
		return nil, append(problems, &KeyError{Key: key, Err: err})
	}
	return v, problems
}

func keystore(file, password, typ string) (*tls.Certificate, error) {
	switch strings.ToUpper(typ) {
	case "", "PKCS12":
	case "PEM":
		return nil, fmt.Errorf("%s=PEM: give the PEM files as %s and %s instead", KeyKeystoreType, KeyCertificate, KeyKey)
	default:
		return nil, storeType(KeyKeystoreType, typ, file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, fmt.Errorf("read %s as PKCS12 (password in %s): %w", file, KeyKeystorePassword, err)
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}

// unlessDefault is a value for given: "" when v is one of the key's defaults (which the user
// need not have given), else not empty (even when v is).
func unlessDefault(v string, defaults ...string) string {
	if slices.Contains(defaults, v) {
		return ""
	}
	return "set:" + v
}
