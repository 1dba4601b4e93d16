package mosquittotest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kentongan/kentongan/test/mosquittotest"
)

func readConfig(t *testing.T, b *mosquittotest.Broker) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.Dir(), "mosquitto.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
