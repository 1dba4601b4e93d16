package enroll

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files of the CA inside its directory. The key is 0600 and never leaves the hub.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// Organisational units that say what a certificate of this CA is for. The broker takes the
// identity of a client from them and the common name, never from its MQTT client ID.
const (
	OUDevice  = "kentongan-device"  // CN is the device ID
	OUService = "kentongan-service" // CN names a hub tool (the hub's own external client, bridges)
	OUServer  = "kentongan-broker"
)

// Validity periods. A device certificate lives as long as a kiosk; withdrawing it is the
// registry's job (revocation, superseding), not expiry's.
const (
	caValidity     = 30 * 365 * 24 * time.Hour
	deviceValidity = 10 * 365 * 24 * time.Hour
	serverValidity = 2 * 365 * 24 * time.Hour
)

// ErrCAIncomplete means the CA directory holds a certificate without its key or the reverse:
// generating a new CA then would silently cut off every device, so the hub refuses to start.
var ErrCAIncomplete = errors.New("hub CA directory holds only one of ca.crt and ca.key")

// CA is the hub's certificate authority.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM string
	pool    *x509.CertPool
}

// LoadOrCreateCA loads the CA from dir, or generates one there (ECDSA P-256) at the hub's
// first start. It reports whether it created one.
func LoadOrCreateCA(dir string, now time.Time) (*CA, bool, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		ca, err := loadCA(certPath, keyPath)
		return ca, false, err
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
	case certErr == nil || keyErr == nil:
		return nil, false, fmt.Errorf("load hub CA from %s: %w", dir, ErrCAIncomplete)
	default:
		return nil, false, fmt.Errorf("load hub CA from %s: %w", dir, errors.Join(certErr, keyErr))
	}
	ca, keyPEM, err := newCA(now)
	if err != nil {
		return nil, false, fmt.Errorf("create hub CA: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create hub CA directory: %w", err)
	}
	// The key first: a crash between the two writes leaves a key without a certificate, which
	// the next start reports instead of replacing.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, false, fmt.Errorf("write hub CA key: %w", err)
	}
	if err := writeFileAtomic(certPath, []byte(ca.certPEM), 0o644); err != nil {
		return nil, false, fmt.Errorf("write hub CA certificate: %w", err)
	}
	return ca, true, nil
}

func newCA(now time.Time) (*CA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Kentongan hub CA", Organization: []string{"Kentongan"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	return caFrom(cert, key), keyPEM, nil
}

func caFrom(cert *x509.Certificate, key crypto.Signer) *CA {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: key, pool: pool,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))}
}

func loadCA(certPath, keyPath string) (*CA, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("load hub CA: %w", err)
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load hub CA key: %w", err)
	}
	cblock, _ := pem.Decode(cb)
	if cblock == nil || cblock.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("load hub CA: %s holds no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load hub CA %s: %w", certPath, err)
	}
	kblock, _ := pem.Decode(kb)
	if kblock == nil {
		return nil, fmt.Errorf("load hub CA key: %s holds no PEM key", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load hub CA key %s: %w", keyPath, err)
	}
	key, ok := k.(crypto.Signer)
	if !ok || !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("load hub CA: the key in %s does not belong to the certificate in %s", keyPath, certPath)
	}
	return caFrom(cert, key), nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// PEM is the CA certificate in PEM, which devices trust for the broker.
func (ca *CA) PEM() string { return ca.certPEM }

// Pool holds the CA certificate alone.
func (ca *CA) Pool() *x509.CertPool { return ca.pool }

// Certificate is the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Issued is a certificate the CA signed.
type Issued struct {
	PEM         string
	Serial      string // hex
	Fingerprint string // SHA-256 of the DER, hex
	NotAfter    time.Time
	Cert        *x509.Certificate
}

// SignDevice issues deviceID's client certificate for the public key of a CSR that
// ParseCSR has checked.
func (ca *CA) SignDevice(csr *x509.CertificateRequest, deviceID string, now time.Time) (*Issued, error) {
	return ca.sign(csr.PublicKey, pkix.Name{CommonName: deviceID, OrganizationalUnit: []string{OUDevice}},
		now, deviceValidity, x509.ExtKeyUsageClientAuth, nil)
}

// IssueService issues a client certificate for a hub tool named name, with a fresh key. Such a
// client is not confined to a device's topics.
func (ca *CA) IssueService(name string, now time.Time) (tls.Certificate, error) {
	return ca.issueWithKey(pkix.Name{CommonName: name, OrganizationalUnit: []string{OUService}}, now, serverValidity,
		x509.ExtKeyUsageClientAuth, nil)
}

// ServerTLS is the TLS configuration of the broker's device listener: a server certificate
// for hosts (names or IP addresses) signed by the CA, fresh at every start, and client
// certificates required and verified against the CA.
func (ca *CA) ServerTLS(hosts []string, now time.Time) (*tls.Config, error) {
	cert, err := ca.issueWithKey(pkix.Name{CommonName: "kentongan broker", OrganizationalUnit: []string{OUServer}}, now,
		serverValidity, x509.ExtKeyUsageServerAuth, hosts)
	if err != nil {
		return nil, fmt.Errorf("broker server certificate: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    ca.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

func (ca *CA) issueWithKey(name pkix.Name, now time.Time, validity time.Duration, usage x509.ExtKeyUsage, hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	is, err := ca.sign(key.Public(), name, now, validity, usage, hosts)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{is.Cert.Raw}, PrivateKey: key, Leaf: is.Cert}, nil
}

func (ca *CA) sign(pub crypto.PublicKey, name pkix.Name, now time.Time, validity time.Duration, usage x509.ExtKeyUsage, hosts []string) (*Issued, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      name,
		NotBefore:    now.Add(-time.Hour), // a kiosk's clock before NTP may lag
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if _, ok := pub.(*rsa.PublicKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %s: %w", name.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %s: %w", name.CommonName, err)
	}
	return &Issued{
		PEM:         string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Serial:      serial.Text(16),
		Fingerprint: Fingerprint(der),
		NotAfter:    cert.NotAfter,
		Cert:        cert,
	}, nil
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// Fingerprint is the hex SHA-256 of DER bytes (a certificate's or a public key's).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// maxCSR bounds a CSR's PEM; a P-256 one is about 500 bytes, an RSA-4096 one 1.7 KB.
const maxCSR = 8 << 10

// ParseCSR decodes a PEM certificate request, checks its self-signature (proof that the
// requester holds the key) and its key type, and returns it with its public key's
// fingerprint. Errors wrap ErrBadCSR.
func ParseCSR(csrPEM string) (*x509.CertificateRequest, string, error) {
	if len(csrPEM) > maxCSR {
		return nil, "", fmt.Errorf("%w: %d bytes, more than %d", ErrBadCSR, len(csrPEM), maxCSR)
	}
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, "", fmt.Errorf("%w: not a PEM \"CERTIFICATE REQUEST\"", ErrBadCSR)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, "", fmt.Errorf("%w: signature does not verify: %v", ErrBadCSR, err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, "", fmt.Errorf("%w: ECDSA key must be on P-256 or P-384", ErrBadCSR)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, "", fmt.Errorf("%w: RSA key of %d bits is shorter than 2048", ErrBadCSR, k.N.BitLen())
		}
	default:
		return nil, "", fmt.Errorf("%w: unsupported key type %T", ErrBadCSR, csr.PublicKey)
	}
	return csr, Fingerprint(csr.RawSubjectPublicKeyInfo), nil
}

// Identity is who a client certificate of the CA speaks for.
type Identity struct {
	Device  string // the device ID, for a device certificate
	Service string // the tool's name, for a service certificate
}

// IdentityOf reads the identity of a certificate that has been verified against the CA.
func IdentityOf(cert *x509.Certificate) (Identity, bool) {
	if cert == nil || len(cert.Subject.OrganizationalUnit) != 1 || cert.Subject.CommonName == "" {
		return Identity{}, false
	}
	switch cert.Subject.OrganizationalUnit[0] {
	case OUDevice:
		return Identity{Device: cert.Subject.CommonName}, true
	case OUService:
		return Identity{Service: cert.Subject.CommonName}, true
	}
	return Identity{}, false
}

// writeFileAtomic writes data to path through a temporary file, fsynced and renamed, so that
// a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
