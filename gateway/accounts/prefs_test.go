package accounts

import (
	"path/filepath"
	"testing"

	"mallgrid/store"
)

// TestPrefs_KeptAcrossRestarts: a user's language is in the database,
// read back by a new Prefs over the reopened file; other users have none.
func TestPrefs_KeptAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := &Prefs{DB: db}
	if got := p.UserLang("ann"); got != "" {
		t.Errorf("a new user's language = %q; want none", got)
	}
	if err := p.SetUserLang("ann", "zh-CN"); err != nil {
		t.Fatal(err)
	}
	if err := p.SetUserLang("bob/x", "en"); err != nil { // a name with a slash stays its own
		t.Fatal(err)
	}
	db.Close()
	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p = &Prefs{DB: db}
	if got := p.UserLang("ann"); got != "zh-CN" {
		t.Errorf("ann's language after a restart = %q; want zh-CN", got)
	}
	if got := p.UserLang("bob/x"); got != "en" {
		t.Errorf("bob/x's language = %q; want en", got)
	}
	if got := p.UserLang("bob"); got != "" {
		t.Errorf("bob's language = %q; want none", got)
	}
}
