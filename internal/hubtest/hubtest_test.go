package hubtest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServer(t *testing.T) {
	h := New(t, Config{
		Repos: map[string]map[string][]byte{"org/m": {"config.json": []byte("{}"), "model.safetensors": []byte("w")}},
		Gated: map[string]string{"org/m": "tok"},
	})
	commit := h.Commit("org/m")
	get := func(method, path, token string) *http.Response {
		req, _ := http.NewRequest(method, h.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no redirect following
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	if r := get("HEAD", "/org/m/resolve/main/config.json", ""); r.StatusCode != 401 || r.Header.Get("X-Error-Code") != "GatedRepo" {
		t.Errorf("no token: %d %s", r.StatusCode, r.Header.Get("X-Error-Code"))
	}
	if r := get("HEAD", "/org/m/resolve/main/config.json", "bad"); r.StatusCode != 403 {
		t.Errorf("bad token: %d", r.StatusCode)
	}
	r := get("HEAD", "/org/m/resolve/main/config.json", "tok")
	if r.StatusCode != 200 || r.Header.Get("X-Repo-Commit") != commit || r.Header.Get("ETag") != `"`+GitBlobSHA1([]byte("{}"))+`"` {
		t.Errorf("config.json: %d %v", r.StatusCode, r.Header)
	}
	r = get("GET", "/org/m/resolve/"+commit+"/model.safetensors", "tok")
	loc := r.Header.Get("Location")
	if r.StatusCode != 302 || r.Header.Get("X-Linked-Etag") != `"`+SHA256([]byte("w"))+`"` || !strings.Contains(loc, "/cdn/") {
		t.Fatalf("model.safetensors: %d %v", r.StatusCode, r.Header)
	}
	resp, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(b) != "w" || h.Downloads("org/m", "model.safetensors") != 1 {
		t.Errorf("CDN: %q", b)
	}
	if r := get("HEAD", "/org/m/resolve/main/nope", "tok"); r.StatusCode != 404 || r.Header.Get("X-Error-Code") != "EntryNotFound" || r.Header.Get("X-Repo-Commit") != commit {
		t.Errorf("missing file: %d %v", r.StatusCode, r.Header)
	}
	if r := get("HEAD", "/org/m/resolve/v2/config.json", "tok"); r.StatusCode != 404 || r.Header.Get("X-Error-Code") != "RevisionNotFound" {
		t.Errorf("missing revision: %d", r.StatusCode)
	}
	if r := get("HEAD", "/org/x/resolve/main/config.json", ""); r.StatusCode != 401 || r.Header.Get("X-Error-Code") != "RepositoryNotFound" {
		t.Errorf("missing repo: %d", r.StatusCode)
	}
	if NewServer(t, nil).URL == "" {
		t.Error("NewServer")
	}
}
