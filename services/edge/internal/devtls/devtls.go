// Package devtls creates, once, a local development certificate authority
// and a server certificate for localhost signed by it, so that browsers and
// the Amplify client (which insists on wss://) can talk to a laptop edge
// after the CA is trusted.
package devtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names inside the directory.
const (
	CAFile   = "ca.pem"
	CAKey    = "ca-key.pem"
	CertFile = "server.pem"
	KeyFile  = "server-key.pem"
)

// Validity and renewal bounds.
const (
	// CAValidity is the lifetime of a generated CA.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is the lifetime of a server certificate; 397 days is the
	// most that browsers accept.
	LeafValidity = 397 * 24 * time.Hour
	// RenewBefore regenerates a certificate this long before it expires.
	RenewBefore = 30 * 24 * time.Hour
	// CAName is the CA's common name (shown in trust stores).
	CAName = "Gatehouse Development CA"
)

// Hosts are the names the server certificate covers.
var Hosts = []string{"localhost", "127.0.0.1", "::1"}

// ErrBadFiles is returned when existing files cannot be read or parsed.
var ErrBadFiles = errors.New("devtls: unusable certificate files")

// Paths are the files of a development PKI.
type Paths struct {
	CA, Cert, Key string
}

// Ensure makes sure dir holds a CA and a server certificate valid at now for
// [Hosts], reusing existing files when they are still good and regenerating
// what is missing or expiring. Private keys are written with mode 0600.
func Ensure(dir string, now time.Time) (Paths, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Paths{}, fmt.Errorf("devtls: create %s: %w", dir, err)
	}
	p := Paths{CA: filepath.Join(dir, CAFile), Cert: filepath.Join(dir, CertFile), Key: filepath.Join(dir, KeyFile)}
	caKeyPath := filepath.Join(dir, CAKey)

	caCert, caKey, err := loadPair(p.CA, caKeyPath)
	if err != nil || !usable(caCert, now) || !caCert.IsCA {
		caCert, caKey, err = newCA(now)
		if err != nil {
			return Paths{}, err
		}
		if err := writePair(p.CA, caKeyPath, caCert, caKey); err != nil {
			return Paths{}, err
		}
	}
	leaf, _, err := loadPair(p.Cert, p.Key)
	if err == nil && usable(leaf, now) && leaf.CheckSignatureFrom(caCert) == nil && coversHosts(leaf) {
		return p, nil
	}
	leaf, leafKey, err := newLeaf(caCert, caKey, now)
	if err != nil {
		return Paths{}, err
	}
	if err := writePair(p.Cert, p.Key, leaf, leafKey); err != nil {
		return Paths{}, err
	}
	return p, nil
}

func usable(c *x509.Certificate, now time.Time) bool {
	return now.After(c.NotBefore) && now.Add(RenewBefore).Before(c.NotAfter)
}

func coversHosts(c *x509.Certificate) bool {
	for _, h := range Hosts {
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func loadPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadFiles, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s is not an ECDSA key", ErrBadFiles, keyPath)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadFiles, err)
	}
	return cert, key, nil
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("devtls: serial: %w", err)
	}
	return n, nil
}

func newCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("devtls: CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: CAName, Organization: []string{"Gatehouse"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("devtls: create CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("devtls: parse CA: %w", err)
	}
	return cert, key, nil
}

func newLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("devtls: server key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"Gatehouse development"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(LeafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("devtls: create server certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("devtls: parse server certificate: %w", err)
	}
	return cert, key, nil
}

func writePair(certPath, keyPath string, cert *x509.Certificate, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("devtls: encode key: %w", err)
	}
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

// writeFile writes atomically (temp file + rename) so a crash never leaves
// half a key behind.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("devtls: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("devtls: chmod %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("devtls: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("devtls: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("devtls: write %s: %w", path, err)
	}
	return nil
}
