package config

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/spf13/viper"

	"mallgrid/gateway/yamlcheck"
)

// EnvPrefix starts the environment variables that override the file:
// MALLGRID_<SECTION>_<KEY>, e.g. MALLGRID_HTTP_LISTEN or
// MALLGRID_STORAGE_LOCK_TIMEOUT. Only the scalar keys of the top-level
// sections (site, storage, http, log) can be overridden; lists cannot.
const EnvPrefix = "MALLGRID_"

// layeredKey is a key that defaults and environment variables layer over
// the file.
type layeredKey struct {
	key   string // site.name
	env   string // MALLGRID_SITE_NAME
	index []int  // field index path in Config
}

// layeredKeys derives the layered keys from the Config type, so a key added
// to a section gets its default layering and its variable with no more code.
func layeredKeys() []layeredKey {
	var keys []layeredKey
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		sec := t.Field(i)
		secName := yamlName(sec)
		if secName == "" || sec.Type.Kind() != reflect.Struct {
			continue
		}
		for j := range sec.Type.NumField() {
			f := sec.Type.Field(j)
			name := yamlName(f)
			switch f.Type.Kind() {
			case reflect.Slice, reflect.Struct, reflect.Pointer, reflect.Map:
				continue
			}
			if name == "" {
				continue
			}
			key := secName + "." + name
			env := EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
			keys = append(keys, layeredKey{key: key, env: env, index: []int{i, j}})
		}
	}
	return keys
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// layer sets cfg's layered keys from, lowest first: the defaults, the file
// (the values the decoder accepted), and env. A variable whose value does
// not decode is a problem naming it, an unknown MALLGRID_ variable a
// warning; an empty variable counts as unset, as viper does with its own
// environment lookup.
//
// viper's AutomaticEnv reads the process environment; env is a parameter
// here (tests, the CLI's view of it), so the variables are matched against
// the known keys and given to viper as overrides.
func layer(cfg *Config, r *yamlcheck.Report, env []string) {
	v := viper.New()
	keys := layeredKeys()
	defaults := reflect.ValueOf(sectionDefaults())
	cv := reflect.ValueOf(cfg).Elem()
	file := make(map[string]any)
	for _, k := range keys {
		v.SetDefault(k.key, defaults.FieldByIndex(k.index).Interface())
		if r.Given(k.key) && !r.Bad(k.key) {
			sec, name, _ := strings.Cut(k.key, ".")
			m, _ := file[sec].(map[string]any)
			if m == nil {
				m = make(map[string]any)
				file[sec] = m
			}
			m[name] = cv.FieldByIndex(k.index).Interface()
		}
	}
	// MergeConfigMap documents an error but never returns one in v1.21;
	// if it ever does, the file's values are lost, so say so.
	if err := v.MergeConfigMap(file); err != nil {
		r.At(0, "", "cannot layer the file over the defaults: %v", err)
	}

	vars := environ(env)
	used, secretVars := notifySecrets(cfg, r, vars)
	busUsed, busVars := busSecrets(cfg, r, vars)
	used, secretVars = append(used, busUsed...), append(secretVars, busVars...)
	qrUsed, qrVars := qrSecret(&cfg.Uplink.QR, r, vars)
	used, secretVars = append(used, qrUsed...), append(secretVars, qrVars...)
	unknownVars(r, keys, vars, used, secretVars)
	for _, k := range keys {
		s := vars[k.env]
		if s == "" {
			continue
		}
		// The variable replaces a bad file value; a bad variable is a
		// problem naming it, without a line.
		nv := reflect.New(cv.FieldByIndex(k.index).Type())
		if r.Override(k.key, "env "+k.env, s, nv.Interface()) {
			v.Set(k.key, nv.Elem().Interface())
		}
	}

	for _, k := range keys {
		f := cv.FieldByIndex(k.index)
		if val := reflect.ValueOf(v.Get(k.key)); val.IsValid() && val.Type() == f.Type() {
			f.Set(val)
		}
	}
}

// environ turns a list like os.Environ() into a map; a later entry wins,
// as with exec.Cmd's Env.
func environ(env []string) map[string]string {
	vars := make(map[string]string)
	for _, kv := range env {
		if name, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, EnvPrefix) {
			vars[name] = val
		}
	}
	return vars
}

// unknownVars warns of each set MALLGRID_ variable that overrides no key,
// with the one it probably misspells. Ignored silently, a misspelt
// MALLGRID_STORAGE_PAHT would leave the gateway on the default database
// while the technician believes otherwise. A warning rather than a
// problem: a stray variable in the service's environment should not keep
// the gateway from starting.
//
// used are the notify channels' secret variables read (or warned of),
// secretVars every one a channel could read: hints for a misspelt one.
func unknownVars(r *yamlcheck.Report, keys []layeredKey, vars map[string]string, used, secretVars []string) {
	known := make(map[string]bool, len(keys))
	for _, name := range used {
		known[name] = true
	}
	suffixes := make([]string, 0, len(keys)+len(secretVars)) // http_listen: the part a misspelling is in
	for _, k := range keys {
		known[k.env] = true
		suffixes = append(suffixes, strings.TrimPrefix(k.env, EnvPrefix))
	}
	for _, name := range secretVars {
		suffixes = append(suffixes, strings.TrimPrefix(name, EnvPrefix))
	}
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		if vars[name] == "" || known[name] {
			continue
		}
		hint := ""
		if best := yamlcheck.Suggest(strings.TrimPrefix(name, EnvPrefix), suffixes); best != "" {
			hint = " (did you mean " + EnvPrefix + best + "?)"
		} else {
			all := make([]string, len(keys))
			for i, k := range keys {
				all[i] = k.env
			}
			slices.Sort(all)
			hint = " (known: " + strings.Join(all, ", ") + ")"
		}
		r.WarnAt(0, "", "env %s: unknown variable, ignored%s", name, hint)
	}
}
