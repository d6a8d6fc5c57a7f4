// Package config loads the technician's YAML file strictly and validates
// it, reporting every problem at once.
//
// The contract is the one `mallgrid config check` shows: a file either
// loads into a *Config, or every problem in it comes back as a *Problems,
// each Problem printing as
//
//	FILE:LINE: key: problem
//
// sorted by line, where key is a path like buses[1].parity,
// meters[3].bus or models[0].registers[2].type. Unknown keys (anywhere,
// with a "did you mean"), duplicate keys, values of the wrong type, missing
// required values, values out of range or outside their allowed set,
// duplicate names and ids, two meters at one (bus, address), and references
// to an unknown bus, model or tenant are each one problem. A custom model
// must also pass meter.Model.Validate. Two buses on one line (the same
// serial device, however spelled: cleaned, and through symlinks such as
// /dev/serial/by-id; or the same TCP host:port), one token's SHA-256 or
// one password hash under two entries, and a storage.path that is a
// directory are problems too. A key whose value did not decode gets that
// one problem and no more. A file over 1 MiB is refused unread, and a
// file that is not text is one problem at the line of its first bad byte.
//
// Warnings are what is legal but unwise: an http.listen that is not a
// loopback address, and a MALLGRID_ variable that overrides nothing (with
// the one it probably misspells). They print as "FILE:LINE: key: warning:
// …" and do not stop a load: a file with warnings only loads, with them in
// Config.Warnings (config check prints them and exits 0, the daemon logs
// them); a file with problems is refused with its warnings listed too.
//
// Every key has a default (see configs/mallgrid.example.yaml, which
// documents them all); a key left out or written with no value takes it.
//
// Layering, lowest first: defaults, the file, environment variables. The
// scalar keys of the top-level sections (site, storage, http.listen, log)
// can be overridden by MALLGRID_<SECTION>_<KEY>, e.g. MALLGRID_HTTP_LISTEN,
// MALLGRID_STORAGE_PATH, MALLGRID_LOG_LEVEL; an empty variable counts as
// unset. A bad value from the environment is reported without a line and
// names the variable: "FILE: http.listen: env MALLGRID_HTTP_LISTEN: …".
// Any other MALLGRID_ variable that is set is a warning.
//
// The file is decoded by gateway/yamlcheck, which walks go.yaml.in/yaml/v3's
// node tree, because viper's UnmarshalExact knows no line numbers and yaml's
// KnownFields stops at the first problem; Problem and Problems are its
// types. viper does the layering, one viper.New() per load:
// the package keeps no state between calls, and Load may run concurrently.
//
// It imports gateway/yamlcheck, billing (money, tariffs, credit
// ratings, protected hours) and drivers/meter (the catalogue of models).
package config
