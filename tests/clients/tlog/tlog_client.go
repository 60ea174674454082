// An outside client of Vellum's tiled log, written only against the Go team's
// golang.org/x/mod/sumdb packages (nothing of Vellum): it reads the C2SP tlog-tiles of a
// log, over HTTP or from a directory, verifies the signed checkpoint with the log's
// verifier key, proves one entry from its entry bundle against it, and prints
// "ok <index> <size>". Any failure exits 1 and says why.
//
//	tlog_client <base URL or directory> <verifier key> <index> [bearer token]
package main

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

type source struct {
	base  string
	token string
}

// read fetches one file of the tiled log.
func (s source) read(path string) ([]byte, error) {
	if !strings.HasPrefix(s.base, "http://") && !strings.HasPrefix(s.base, "https://") {
		return os.ReadFile(filepath.Join(s.base, filepath.FromSlash(path)))
	}
	req, err := http.NewRequest("GET", strings.TrimSuffix(s.base, "/")+"/"+path, nil)
	if err != nil {
		return nil, err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	return body, nil
}

// c2spPath turns the sumdb tile path (tile/8/L/N, tile/8/data/N) into the C2SP one
// (tile/L/N, tile/entries/N).
func c2spPath(t tlog.Tile) string {
	p := t.Path()
	p = strings.Replace(p, "tile/8/data/", "tile/entries/", 1)
	return strings.Replace(p, "tile/8/", "tile/", 1)
}

// tiles is a tlog.TileReader over the source.
type tiles struct{ src source }

func (t tiles) Height() int { return height }

func (t tiles) ReadTiles(list []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(list))
	for i, tile := range list {
		data, err := t.src.read(c2spPath(tile))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (t tiles) SaveTiles(list []tlog.Tile, data [][]byte) {}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlog_client: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 4 {
		fail("usage: tlog_client <base> <vkey> <index> [token]")
	}
	src := source{base: os.Args[1]}
	if len(os.Args) > 4 {
		src.token = os.Args[4]
	}
	index, err := strconv.ParseInt(os.Args[3], 10, 64)
	if err != nil {
		fail("index: %v", err)
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(os.Args[2]))
	if err != nil {
		fail("verifier key: %v", err)
	}

	raw, err := src.read("checkpoint")
	if err != nil {
		fail("checkpoint: %v", err)
	}
	signed, err := note.Open(raw, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint signature: %v", err)
	}
	lines := strings.SplitN(signed.Text, "\n", 4)
	if len(lines) < 4 || lines[0] != verifier.Name() {
		fail("checkpoint: not a checkpoint of origin %s", verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size: %v", err)
	}
	rootBytes, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rootBytes) != tlog.HashSize {
		fail("checkpoint root: %q", lines[2])
	}
	var tree tlog.Tree
	tree.N = size
	copy(tree.Hash[:], rootBytes)
	if index >= size {
		fail("entry %d is not in the tree of %d", index, size)
	}

	// The entry's bytes, from its bundle.
	n := index / (1 << height)
	width := size - n*(1<<height)
	if width > 1<<height {
		width = 1 << height
	}
	bundle, err := src.read(c2spPath(tlog.Tile{H: height, L: -1, N: n, W: int(width)}))
	if err != nil {
		fail("entry bundle: %v", err)
	}
	var entry []byte
	for i := int64(0); i <= index%(1<<height); i++ {
		if len(bundle) < 2 {
			fail("entry bundle: truncated before entry %d", n*(1<<height)+i)
		}
		length := int(binary.BigEndian.Uint16(bundle))
		if len(bundle) < 2+length {
			fail("entry bundle: truncated in entry %d", n*(1<<height)+i)
		}
		entry, bundle = bundle[2:2+length], bundle[2+length:]
	}

	reader := tlog.TileHashReader(tree, tiles{src})
	proof, err := tlog.ProveRecord(size, index, reader)
	if err != nil {
		fail("proving entry %d from the tiles: %v", index, err)
	}
	if err := tlog.CheckRecord(proof, size, tree.Hash, index, tlog.RecordHash(entry)); err != nil {
		fail("entry %d does not verify against the checkpoint: %v", index, err)
	}
	fmt.Printf("ok %d %d\n", index, size)
}
