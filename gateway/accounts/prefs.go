package accounts

import (
	"strings"
	"sync"

	"mallgrid/store"
)

// userLangPrefix starts the control keys that keep each user's language:
// "user/NAME/lang" → "zh-CN". They sit with the other durable operator
// state (relay overrides, protection flags) and, like them, survive a
// restart.
const userLangPrefix = "user/"

// Prefs keeps what each control-room user chose for themselves (their
// language) in the database: web.Prefs.
type Prefs struct {
	DB *store.DB

	mu    sync.Mutex
	langs map[string]string // loaded on first use
}

func langKey(user string) string { return userLangPrefix + user + "/lang" }

// load reads the stored choices once; p.mu held.
func (p *Prefs) load() error {
	if p.langs != nil {
		return nil
	}
	all, err := p.DB.Controls()
	if err != nil {
		return err
	}
	p.langs = map[string]string{}
	for k, v := range all {
		if rest, ok := strings.CutPrefix(k, userLangPrefix); ok {
			if user, ok := strings.CutSuffix(rest, "/lang"); ok {
				p.langs[user] = string(v)
			}
		}
	}
	return nil
}

// UserLang returns user's chosen language, "" when none (or when the
// database cannot be read: the browser's language is then used).
func (p *Prefs) UserLang(user string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.load() != nil {
		return ""
	}
	return p.langs[user]
}

// SetUserLang stores user's choice durably.
func (p *Prefs) SetUserLang(user, lang string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.load(); err != nil {
		return err
	}
	if p.langs[user] == lang {
		return nil
	}
	if _, err := p.DB.PutControl(map[string][]byte{langKey(user): []byte(lang)}); err != nil {
		return err
	}
	p.langs[user] = lang
	return nil
}
