package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/web"
	"mallgrid/store"
)

var t0 = time.Date(2026, 11, 27, 18, 0, 0, 0, time.FixedZone("CST", 8*3600))

func openLog(t *testing.T) *Log {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "a.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &Log{DB: db}
}

// Every field the web layer hands over comes back in the admin's view,
// chained: a field the adapter forgot would come back empty.
func TestLog_RecordsEveryField(t *testing.T) {
	l := openLog(t)
	var in web.AuditRecord
	v := reflect.ValueOf(&in).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.String {
			f.SetString(v.Type().Field(i).Name + " value")
		}
	}
	in.Time = t0
	for i := 0; i < 2; i++ {
		if err := l.Record(in); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.Records(web.AuditQuery{Limit: 10})
	if err != nil || len(got) != 2 {
		t.Fatalf("Records = %v, %v; want 2", got, err)
	}
	out := reflect.ValueOf(got[0])
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Name
		if name == "Time" {
			continue // compared as an instant below: the zone's name is not stored
		}
		if o := out.FieldByName(name); !o.IsValid() || !reflect.DeepEqual(o.Interface(), v.Field(i).Interface()) {
			t.Errorf("%s = %v; want %v", name, o, v.Field(i))
		}
	}
	if !got[0].Time.Equal(t0) {
		t.Errorf("Time = %v; want %v", got[0].Time, t0)
	}
	if got[0].Seq != 2 || got[1].Seq != 1 || got[0].Prev != got[1].Hash || len(got[0].Hash) != 64 {
		t.Errorf("chain: %+v; want record 2 after record 1, newest first", got)
	}
	if c, err := l.DB.CheckAuditChain(); err != nil || c.Fault != nil || c.Records != 2 {
		t.Errorf("CheckAuditChain = %+v, %v; want 2 records, whole", c, err)
	}
}

// The query reaches the store whole: each filter narrows the answer.
func TestLog_Filters(t *testing.T) {
	l := openLog(t)
	for i, r := range []web.AuditRecord{
		{Actor: "user:ann", Action: "POST /api/v1/meters/{id}/relay", Target: "M-1"},
		{Actor: "user:bob", Action: "POST /api/v1/accounts/{tenant}/topups", Target: "T-1"},
		{Actor: "user:ann", Action: "POST /api/v1/accounts/{tenant}/topups", Target: "T-2"},
		{Actor: "mallory", Action: "login_failed"},
	} {
		r.Time = t0.Add(time.Duration(i) * time.Hour)
		if err := l.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		q    web.AuditQuery
		want []uint64
	}{
		{web.AuditQuery{Limit: 10}, []uint64{4, 3, 2, 1}},
		{web.AuditQuery{Actor: "user:ann", Limit: 10}, []uint64{3, 1}},
		{web.AuditQuery{Action: "POST /api/v1/accounts/", Limit: 10}, []uint64{3, 2}},
		{web.AuditQuery{Target: "T-2", Limit: 10}, []uint64{3}},
		{web.AuditQuery{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour), Limit: 10}, []uint64{3, 2}},
		{web.AuditQuery{Before: 3, Limit: 1}, []uint64{2}},
	} {
		got, err := l.Records(tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, r := range got {
			seqs = append(seqs, r.Seq)
		}
		if !reflect.DeepEqual(seqs, tt.want) {
			t.Errorf("Records(%+v) = %v; want %v", tt.q, seqs, tt.want)
		}
	}
}

// The web view asks for one record more than its largest page, to tell
// whether another page follows: the store must give that many.
func TestLog_PageFitsTheStore(t *testing.T) {
	if web.MaxAuditPage+1 > store.MaxAuditLimit {
		t.Errorf("web.MaxAuditPage+1 = %d exceeds store.MaxAuditLimit %d", web.MaxAuditPage+1, store.MaxAuditLimit)
	}
}

// A record the store refuses is the caller's error: the web layer logs it.
func TestLog_RecordRefused(t *testing.T) {
	l := openLog(t)
	if err := l.Record(web.AuditRecord{Action: "login_failed"}); !errors.Is(err, store.ErrBadAudit) {
		t.Errorf("Record without a time = %v; want store.ErrBadAudit", err)
	}
}

type noMeters struct{}

func (noMeters) Status() web.StatusView  { return web.StatusView{} }
func (noMeters) Meters() []web.MeterView { return nil }

// End to end through the real server and database: a failed login is kept
// in the chained log, and the admin reads it back through the API.
func TestLog_ThroughTheServer(t *testing.T) {
	l := openLog(t)
	sum := sha256.Sum256([]byte("admin-secret"))
	srv, err := web.New(noMeters{}, web.Options{Log: zerolog.Nop(), Now: func() time.Time { return t0 }, LoginDelay: time.Millisecond,
		Tokens:  []web.Token{{Name: "root", Role: web.RoleAdmin, SHA256: hex.EncodeToString(sum[:])}},
		Auditor: l, AuditLog: l})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	form := url.Values{"username": {"mallory"}, "password": {"guess"}}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Host = "localhost"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(httptest.NewRecorder(), req)

	req = httptest.NewRequest(http.MethodGet, "/api/v1/audit?action=login_failed", nil)
	req.Host = "localhost"
	req.Header.Set("Authorization", "Bearer admin-secret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/audit = %d %s", rec.Code, body)
	}
	var page web.AuditPage
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 1 || page.Records[0].Target != "mallory" || page.Records[0].Actor != "login:192.0.2.1" || page.Records[0].Seq != 1 || page.Records[0].Prev != store.AuditGenesis {
		t.Fatalf("audit view = %s; want the failed login as record 1", body)
	}
	if c, err := l.DB.CheckAuditChain(); err != nil || c.Fault != nil || c.Last != page.Records[0].Hash {
		t.Errorf("CheckAuditChain = %+v, %v; want whole, ending at %s", c, err, page.Records[0].Hash)
	}
}
