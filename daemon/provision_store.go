package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The provisioning state directory:
//
//	device.key            the kiosk's private key (0600); made once, never leaves the kiosk
//	current -> gen-…      the credentials in force: a symlink, swapped in one rename
//	gen-…/kentongand.yaml the configuration made from what the hub issued
//	gen-…/device.crt      the client certificate the hub signed
//	gen-…/ca.crt          the hub's CA
//
// A generation directory is complete before current points at it, so a power cut or a pulled
// cable at any moment leaves the kiosk with the old credentials or the new ones, never a mix.
const (
	keyFile     = "device.key"
	currentLink = "current"
	configFile  = "kentongand.yaml"
	certFile    = "device.crt"
	caFile      = "ca.crt"
	genPrefix   = "gen-"
)

// writeFileAtomic writes data to path through a temporary file in the same directory: written,
// fsynced, renamed over path, and the directory fsynced, so path holds the old content or the
// new, whole. Files are 0600: they hold credentials or say where they are.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// isDiskFull reports whether err is the disk being full (or over quota).
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// loadOrMakeKey returns the kiosk's key, making and storing it the first time. The same key
// answers every certificate request, so that an enrollment retried after a lost answer is
// recognised by the hub as the same device.
func loadOrMakeKey(dir string, write func(string, []byte) error) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, keyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("key %s: no PEM block", path)
		}
		k, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		return k, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read key: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	if err := write(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err != nil {
		return nil, err
	}
	return k, nil
}

// makeCSR returns a PEM certificate request for key. The subject only helps a human reading
// the hub's log: the hub names the device.
func makeCSR(key *ecdsa.PrivateKey, serial string) (string, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "kentongan kiosk " + serial}}, key)
	if err != nil {
		return "", fmt.Errorf("make certificate request: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// parseCert reads the first certificate of a PEM text.
func parseCert(what, text string) (*x509.Certificate, error) {
	blk, _ := pem.Decode([]byte(text))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", what)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return c, nil
}

// checkCert checks that certPEM is for key, and issued for client authentication by a CA in
// caPEM.
func checkCert(certPEM, caPEM string, key *ecdsa.PrivateKey, now time.Time) (*x509.Certificate, error) {
	cert, err := parseCert("certificate", certPEM)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("the certificate is not for this kiosk's key")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, errors.New("CA: no PEM certificate")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("the certificate is not signed by the given CA: %w", err)
	}
	return cert, nil
}

// current returns the generation directory in force, or "" on a blank kiosk.
func currentGen(dir string) (string, error) {
	target, err := os.Readlink(filepath.Join(dir, currentLink))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", currentLink, err)
	}
	if strings.Contains(target, "/") {
		return "", fmt.Errorf("%s points outside the state directory: %s", currentLink, target)
	}
	return filepath.Join(dir, target), nil
}

// commitGen makes gen (a complete directory in dir) the one in force, and removes the others.
func commitGen(dir, gen string) error {
	tmp := filepath.Join(dir, "."+currentLink+".tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		return fmt.Errorf("commit credentials: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, currentLink)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("commit credentials: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("commit credentials: %w", err)
	}
	removeStaleGens(dir, filepath.Base(gen))
	return nil
}

// removeStaleGens removes generation directories other than keep: those replaced, and any a
// power cut left half-written.
func removeStaleGens(dir, keep string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), genPrefix) && e.Name() != keep {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// freeBytes is the free space under dir, or -1 if unknown.
func freeBytes(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
