package gateway

import (
	"reflect"
	"slices"
	"strings"

	"mallgrid/billing/policy"
	"mallgrid/billing/tariff"
	"mallgrid/gateway/config"
)

// keepRestartOnly puts the running value back into next for every key
// that only a restart can change — they are read by the process, not a
// generation: the database (storage.*), the listener (http.listen,
// http.tls) and the logger (log.*) — and returns the keys whose value in
// next differed.
func keepRestartOnly(running, next *config.Config) []string {
	var keys []string
	keys = append(keys, fieldDiffs("storage", running.Storage, next.Storage)...)
	if running.HTTP.Listen != next.HTTP.Listen {
		keys = append(keys, "http.listen")
	}
	if !reflect.DeepEqual(running.HTTP.TLS, next.HTTP.TLS) {
		keys = append(keys, "http.tls")
	}
	keys = append(keys, fieldDiffs("log", running.Log, next.Log)...)
	next.Storage = running.Storage
	next.HTTP.Listen = running.HTTP.Listen
	next.HTTP.TLS = running.HTTP.TLS
	next.Log = running.Log
	return keys
}

// fieldDiffs names, as prefix.yaml_key, the fields of the structs a and b
// (of one type) whose values differ.
func fieldDiffs(prefix string, a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if !f.IsExported() || reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, prefix+"."+name)
	}
	return out
}

// change is one kind of thing a reload added, changed or removed: What
// (tenants, meters, …), How (added, changed, removed) and the ids or
// names, sorted; none for a section compared whole.
type change struct {
	What, How string
	IDs       []string
}

// changes are what a reload changed, in a fixed order.
type changes []change

// String is the changes as one line people read, the same in every
// language: "tenants added T-9; tariffs changed standard; alarms
// changed", or "no changes".
func (cs changes) String() string {
	if len(cs) == 0 {
		return "no changes"
	}
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		s := c.What + " " + c.How
		if len(c.IDs) > 0 {
			s += " " + strings.Join(c.IDs, ", ")
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// configChanges returns what next adds, changes and removes against running:
// tenants, meters, buses, tariffs, ratings and allocation rules by their
// ids, the other sections (alarm rules, protected hours, notifications,
// the uplink, users and tokens, the site) whole.
func configChanges(running, next *config.Config) changes {
	var cs changes
	cs = append(cs, diffByID("tenants", running.Tenants, next.Tenants, func(t config.Tenant) string { return t.ID })...)
	cs = append(cs, diffByID("meters", running.Meters, next.Meters, func(m config.Meter) string { return m.ID })...)
	cs = append(cs, diffByID("buses", running.Buses, next.Buses, func(b config.Bus) string { return b.Name })...)
	cs = append(cs, diffByID("models", running.Models, next.Models, func(m config.Model) string { return m.Name })...)
	cs = append(cs, diffByID("tariffs", running.Tariffs, next.Tariffs, func(t tariff.Spec) string { return t.Name })...)
	cs = append(cs, diffByID("ratings", running.Ratings, next.Ratings, func(r policy.RatingSpec) string { return r.Name })...)
	cs = append(cs, diffByID("allocation", running.Allocation, next.Allocation, func(r config.AllocationRule) string { return r.Name })...)
	whole := []struct {
		what string
		a, b any
	}{
		{"alarms", running.Alarms, next.Alarms},
		{"protected_hours", running.ProtectedHours, next.ProtectedHours},
		{"notify", running.Notify, next.Notify},
		{"uplink", running.Uplink, next.Uplink},
		{"http", running.HTTP, next.HTTP},
		{"site", running.Site, next.Site},
	}
	for _, w := range whole {
		if !reflect.DeepEqual(w.a, w.b) {
			cs = append(cs, change{What: w.what, How: "changed"})
		}
	}
	return cs
}

// diffByID compares two lists of one section by each item's id.
func diffByID[T any](what string, a, b []T, id func(T) string) changes {
	before := make(map[string]T, len(a))
	for _, x := range a {
		before[id(x)] = x
	}
	var added, changed, removed []string
	seen := make(map[string]bool, len(b))
	for _, x := range b {
		k := id(x)
		seen[k] = true
		old, ok := before[k]
		switch {
		case !ok:
			added = append(added, k)
		case !reflect.DeepEqual(old, x):
			changed = append(changed, k)
		}
	}
	for _, x := range a {
		if k := id(x); !seen[k] {
			removed = append(removed, k)
		}
	}
	var cs changes
	for _, c := range []change{{what, "added", added}, {what, "changed", changed}, {what, "removed", removed}} {
		if len(c.IDs) > 0 {
			slices.Sort(c.IDs)
			cs = append(cs, c)
		}
	}
	return cs
}
