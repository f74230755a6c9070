package kafkatest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Certs is a throw-away certificate authority and a server certificate it
// signed for 127.0.0.1, ::1 and localhost, written as PEM files.
type Certs struct {
	// CAFile is the PEM certificate of the CA (a client's trust store, and
	// the broker's PEM trust store).
	CAFile string
	// ServerCertFile and ServerKeyFile are the server certificate and its
	// unencrypted PKCS#8 key.
	ServerCertFile, ServerKeyFile string
	// ServerKeystoreFile holds the PKCS#8 key followed by the certificate
	// chain, the layout of a Kafka PEM key store (ssl.keystore.type=PEM).
	ServerKeystoreFile string
	// Server is the TLS configuration of a Go server presenting the
	// certificate (the embedded broker).
	Server *tls.Config
}

// GenerateCerts creates a CA and a server certificate valid for a day and
// writes them under dir. Keys are ECDSA P-256 from crypto/rand: they are
// secrets, not test inputs, so they are not seeded.
func GenerateCerts(dir string) (Certs, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Certs{}, fmt.Errorf("generate ca key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "aelp test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Certs{}, fmt.Errorf("sign ca certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Certs{}, fmt.Errorf("parse ca certificate: %w", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Certs{}, fmt.Errorf("generate server key: %w", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		// A Kafka broker is also a TLS client of its own listener
		// (inter-broker traffic), so the certificate serves both roles.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return Certs{}, fmt.Errorf("sign server certificate: %w", err)
	}
	srvKeyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return Certs{}, fmt.Errorf("marshal server key: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	srvPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: srvKeyDER})

	c := Certs{
		CAFile:             filepath.Join(dir, "ca.pem"),
		ServerCertFile:     filepath.Join(dir, "server.crt"),
		ServerKeyFile:      filepath.Join(dir, "server.key"),
		ServerKeystoreFile: filepath.Join(dir, "server-keystore.pem"),
	}
	keystore := append(append(append([]byte{}, keyPEM...), srvPEM...), caPEM...)
	for _, f := range []struct {
		path string
		data []byte
	}{
		{c.CAFile, caPEM},
		{c.ServerCertFile, srvPEM},
		{c.ServerKeyFile, keyPEM},
		{c.ServerKeystoreFile, keystore},
	} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return Certs{}, fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	pair, err := tls.X509KeyPair(srvPEM, keyPEM)
	if err != nil {
		return Certs{}, fmt.Errorf("load server key pair: %w", err)
	}
	c.Server = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	return c, nil
}
