package config

import (
	"mallgrid/gateway/yamlcheck"
)

// Load reads the YAML file at path, applies defaults and MALLGRID_*
// environment overrides (env is a list like os.Environ(); nil ignores the
// environment), decodes strictly and validates. On any problem, including
// a file that cannot be read or one over yamlcheck.MaxFileSize (1 MiB,
// refused before it is read), it returns a nil *Config and a *Problems
// holding every problem found, warnings too, sorted by line. A file with
// warnings only loads; Config.Warnings holds them.
func Load(path string, env []string) (*Config, error) {
	data, err := yamlcheck.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, env)
}

// Parse is Load for bytes already read; name is used as FILE in messages.
func Parse(name string, data []byte, env []string) (*Config, error) {
	r := yamlcheck.NewReport(name)
	// The notify section's nested keys (backoff, rate_limit) keep their
	// defaults where the file leaves them out; its scalars are layered.
	cfg := &Config{Notify: notifyDefaults()}
	dec := yamlcheck.Decoder{Want: "a mapping with site, buses, meters…", Defaults: setDefaults}
	if !dec.Decode(r, data, cfg) {
		return nil, r.Err()
	}
	layer(cfg, r, env)
	validate(cfg, r)
	cfg.index()
	if err := r.Err(); err != nil {
		return nil, err
	}
	cfg.Warnings = r.Warnings()
	return cfg, nil
}
