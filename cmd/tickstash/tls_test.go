package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickstash/tickstash/internal/redistest"
)

// TestGatewayTLS starts the gateway role with --tls-cert/--tls-key and reads
// /openapi.json over HTTPS, trusting only the test's own certificate.
func TestGatewayTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	stderr, stop := started(t, "gateway", "--redis-url", redistest.URL(), "--key-prefix", prefix,
		"--http-addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	addr := find(t, stderr, `HTTP   https://(\S+)/v1`)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	resp, err := client.Get("https://" + addr + "/openapi.json")
	if err != nil {
		t.Fatalf("HTTPS request: %v\nstderr:\n%s", err, stderr)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || !strings.Contains(string(body), `"openapi"`) {
		t.Errorf("status %d, TLS %v, body %.100s", resp.StatusCode, resp.TLS != nil, body)
	}
	if code := stop(); code != 0 {
		t.Fatalf("gateway exited %d:\n%s", code, stderr)
	}
	var errb strings.Builder
	if code := Main(t.Context(), []string{"gateway", "--tls-cert", certFile}, strings.NewReader(""), io.Discard, &errb); code != 2 ||
		!strings.Contains(errb.String(), "go together") {
		t.Errorf("--tls-cert alone: exit %d, %s", code, errb.String())
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tickstash test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
