package pyworker

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sort"
	"strconv"
)

// Digest is the hex SHA-256 that names a bundle's revision (python/PROTOCOL.md, "Revisions
// and the digest"). The worker computes it again before it runs any of the bundle's code.
func Digest(b Bundle) string {
	h := sha256.New()
	io.WriteString(h, "centaur-python-revision/1\x00"+b.Origin+"\x00"+b.Entry+"\x00")
	paths := make([]string, 0, len(b.Files))
	for p := range b.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		text := b.Files[p]
		io.WriteString(h, p+"\x00"+strconv.Itoa(len(text))+"\x00")
		io.WriteString(h, text)
	}
	return hex.EncodeToString(h.Sum(nil))
}
