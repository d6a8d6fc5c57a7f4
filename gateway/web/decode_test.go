package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// nestedBody has keys at several depths, for the checks below the top.
type nestedBody struct {
	Name  string            `json:"name"`
	Inner struct{ A int }   `json:"inner"` // an untagged field: its name is the key
	Items []nestedItem      `json:"items"`
	Tags  map[string]string `json:"tags"`
	Any   any               `json:"any"`
	Skip  string            `json:"-"`
}

type nestedItem struct {
	Amount string `json:"amount,omitempty"`
}

func TestDecodeBody(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		into       func() any
		reason     string // "" : decoded
	}{
		{"top-up", `{"amount":"1.00","ref":"A","channel":"cash"}`, topUp, ""},
		{"whitespace around", " \n{\"amount\":\"1.00\"}\n\t ", topUp, ""},
		{"duplicated key, last would win", `{"amount":"1.00","ref":"A","channel":"cash","amount":"99999.00"}`, topUp, `key "amount" appears more than once`},
		{"duplicated key, escaped", `{"amount":"1.00","\u0061mount":"99999.00"}`, topUp, `key "amount" appears more than once`},
		{"duplicated key, same value", `{"ref":"A","ref":"A"}`, topUp, `key "ref" appears more than once`},
		{"key in another case", `{"Amount":"1.00","ref":"A","channel":"cash"}`, topUp, `key "Amount": the key is "amount"`},
		{"key in capitals", `{"amount":"1.00","REF":"A","channel":"cash"}`, topUp, `key "REF": the key is "ref"`},
		{"key with a letter that folds to another", `{"rea\u017Fon":"checked"}`, release, `key "reaſon": the key is "reason"`},
		{"unknown field", `{"amount":"1.00","tip":"1"}`, topUp, `unknown field "tip"`},
		{"empty body", ``, topUp, "empty"},
		{"null", `null`, topUp, "want one JSON object"},
		{"array", `[{"amount":"1.00"}]`, topUp, "want one JSON object"},
		{"string", `"amount"`, topUp, "want one JSON object"},
		{"two objects", `{"amount":"1.00"}{"amount":"2.00"}`, topUp, "nothing after it"},
		{"a stray brace after", `{"amount":"1.00"}}`, topUp, "nothing after it"},
		{"garbage after", `{"amount":"1.00"} x`, topUp, "nothing after it"},
		{"unfinished", `{"amount":"1.00",`, topUp, "unexpected EOF"},
		{"no colon", `{"amount" "1.00"}`, topUp, "invalid character"},
		{"wrong type", `{"amount":1}`, topUp, "cannot unmarshal number"},
		{"over 4 KiB", `{"ref":"` + strings.Repeat("x", maxBody) + `"}`, topUp, "more than 4096 bytes"},
		{"just under 4 KiB", `{"ref":"` + strings.Repeat("x", maxBody-10) + `"}`, topUp, ""},

		{"nested", `{"name":"n","inner":{"A":1},"items":[{"amount":"1"},{}],"tags":{"x":"1","X":"2"},"any":{"k":[1,{"k":2}]}}`, nested, ""},
		{"untagged field in another case", `{"inner":{"a":1}}`, nested, `key "inner.a": the key is "inner.A"`},
		{"duplicated in a nested object", `{"inner":{"A":1,"A":2}}`, nested, `key "inner.A" appears more than once`},
		{"duplicated in an array's object", `{"items":[{"amount":"1"},{"amount":"1","amount":"9"}]}`, nested, `key "items[1].amount" appears more than once`},
		{"case in an array's object", `{"items":[{"AMOUNT":"1"}]}`, nested, `key "items[0].AMOUNT": the key is "items[0].amount"`},
		{"duplicated in a map", `{"tags":{"x":"1","x":"2"}}`, nested, `key "tags.x" appears more than once`},
		{"duplicated in a free-form value", `{"any":[{"k":1,"k":2}]}`, nested, `key "any[0].k" appears more than once`},
		{"unknown field nested", `{"items":[{"amount":"1","tip":"2"}]}`, nested, `unknown field "items[0].tip"`},
		{"a field the decoder skips", `{"Skip":"x"}`, nested, `unknown field "Skip"`},
		{"duplicated top-level key after a nested one", `{"name":"a","inner":{"A":1},"name":"b"}`, nested, `key "name" appears more than once`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.into()
			rec := httptest.NewRecorder()
			ok := decodeBody(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body)), v)
			if tt.reason == "" {
				if !ok {
					t.Fatalf("got %d %s; want decoded", rec.Code, rec.Body)
				}
				return
			}
			var e map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("reply %q: %v", rec.Body, err)
			}
			if ok || rec.Code != http.StatusBadRequest || !strings.Contains(e["error"], tt.reason) {
				t.Errorf("got %v %d %q; want refused, 400 with %q", ok, rec.Code, e["error"], tt.reason)
			}
			if !reflect.ValueOf(v).Elem().IsZero() {
				t.Errorf("got %+v decoded from a refused body; want nothing", v)
			}
		})
	}
}

func topUp() any   { return new(TopUpRequest) }
func release() any { return new(ReleaseRequest) }
func nested() any  { return new(nestedBody) }

// Every body the API takes has exact keys a scan can check: json names
// that are distinct even when case is folded, so a key in another case is
// refused with the one it was meant to be.
func TestRequestBodies_ExactKeys(t *testing.T) {
	for _, v := range []any{TopUpRequest{}, ProtectRequest{}, RelayRequest{}, ReleaseRequest{}, ExchangeRequest{}} {
		fields := make(map[string]reflect.Type)
		names := jsonFields(reflect.TypeOf(v), fields, nil)
		folded := make(map[string]bool)
		for _, n := range names {
			if folded[strings.ToLower(n)] {
				t.Errorf("%T: got two keys %q in one case; want distinct", v, n)
			}
			folded[strings.ToLower(n)] = true
		}
		if got, want := len(names), reflect.TypeOf(v).NumField(); got != want {
			t.Errorf("%T: got %d keys %v; want %d, one for each field", v, got, names, want)
		}
	}
}

// protectLedger records the protection requests that reach it.
type protectLedger struct{ got []ProtectRequest }

func (l *protectLedger) Accounts() ([]AccountView, error)                 { return nil, nil }
func (l *protectLedger) Account(string) (AccountView, error)              { return AccountView{}, nil }
func (l *protectLedger) Entries(string, uint64, int) ([]EntryView, error) { return nil, nil }
func (l *protectLedger) TopUp(context.Context, string, TopUpRequest, string) (EntryView, bool, error) {
	return EntryView{}, false, nil
}
func (l *protectLedger) Protect(_ context.Context, tenant string, req ProtectRequest, _ string) (AccountView, error) {
	l.got = append(l.got, req)
	return AccountView{Tenant: tenant}, nil
}

// TestProtection_Body: the flag is never read from a body that does not
// say true or false, and neither way goes through without a reason.
func TestProtection_Body(t *testing.T) {
	sum := sha256.Sum256([]byte("op-secret"))
	led := &protectLedger{}
	s, err := New(newFake(), Options{Ledger: led, Log: zerolog.Nop(),
		Tokens: []Token{{Name: "op", Role: "operator", SHA256: hex.EncodeToString(sum[:])}}})
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/accounts/T-101/protection", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer op-secret")
		req.Host = "localhost"
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		var e map[string]string
		json.Unmarshal(rec.Body.Bytes(), &e)
		return rec.Code, e["error"]
	}
	for _, tt := range []struct{ name, body, reason string }{
		{"empty object", `{}`, "protected"},
		{"null body", `null`, "want one JSON object"},
		{"no body", ``, "empty"},
		{"flag missing", `{"reason":"night shift"}`, "protected"},
		{"flag null", `{"protected":null,"reason":"night shift"}`, "protected"},
		{"flag as a string", `{"protected":"false","reason":"night shift"}`, "protected"},
		{"flag in another case", `{"Protected":false,"reason":"night shift"}`, `"Protected"`},
		{"flag given twice", `{"protected":true,"reason":"x","protected":false}`, `"protected" appears more than once`},
		{"lift without a reason", `{"protected":false}`, "reason"},
		{"lift with an empty reason", `{"protected":false,"reason":""}`, "reason"},
		{"set without a reason", `{"protected":true}`, "reason"},
	} {
		if code, reason := post(tt.body); code != http.StatusBadRequest || !strings.Contains(reason, tt.reason) {
			t.Errorf("%s: got %d %q; want 400 about %q", tt.name, code, reason, tt.reason)
		}
	}
	if len(led.got) != 0 {
		t.Fatalf("got %d refused requests passed on: %+v; want none", len(led.got), led.got)
	}
	if code, reason := post(`{"protected":false,"reason":"clinic closed for good"}`); code != http.StatusOK {
		t.Fatalf("lift with a reason: got %d %q; want 200", code, reason)
	}
	if len(led.got) != 1 || led.got[0].Protected == nil || *led.got[0].Protected || led.got[0].Reason != "clinic closed for good" {
		t.Errorf("got %+v passed on; want one lift with its reason", led.got)
	}
}
