package config

import (
	"strings"
	"testing"
)

func TestParse_SnapshotProblems(t *testing.T) {
	const head = "site: {name: M}\nbuses: [{name: b1, port: /dev/ttyUSB0}]"
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"keep negative", doc(head, "storage:", "  snapshots: {keep: -1}"), "t.yaml:4: storage.snapshots.keep: want 0..366, got -1"},
		{"keep a year and more", doc(head, "storage:", "  snapshots:", "    keep: 400"), "t.yaml:5: storage.snapshots.keep: want 0..366, got 400"},
		{"at without minutes", doc(head, "storage:", "  snapshots:", "    at: '3'"),
			`t.yaml:5: storage.snapshots.at: want a time of day on the site's clock like 03:30, got "3"`},
		{"at past midnight", doc(head, "storage:", "  snapshots:", "    at: '24:10'"),
			`t.yaml:5: storage.snapshots.at: want a time of day on the site's clock like 03:30, got "24:10"`},
		{"relative dir", doc(head, "storage:", "  snapshots:", "    dir: snaps"),
			`t.yaml:5: storage.snapshots.dir: want an absolute path like /var/lib/mallgrid/snapshots, got "snaps"`},
		{"path too long for the control socket", doc(head, "storage:", "  path: /"+strings.Repeat("d", 100)+"/m.db"),
			"t.yaml:4: storage.path: 106 bytes long; the control socket beside it (the path with .ctl added) must fit in 103: use a shorter path"},
		{"unknown key", doc(head, "storage:", "  snapshots:", "    kept: 3"),
			"t.yaml:5: storage.snapshots.kept: unknown key (did you mean keep?)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("t.yaml", c.file, nil)
			ps := problems(t, err)
			if len(ps) != 1 || ps[0].Error() != c.want {
				t.Errorf("problems = %q; want %q", ps, c.want)
			}
		})
	}
}

func TestStorage_Snapshots(t *testing.T) {
	const head = "site: {name: M}\nbuses: [{name: b1, port: /dev/ttyUSB0}]"
	cases := []struct {
		name string
		file []byte
		keep int
		at   int
		dir  string
	}{
		{"defaults", doc(head, "storage: {path: /data/m.db}"), 7, 3*60 + 30, "/data/snapshots"},
		{"off", doc(head, "storage: {path: /data/m.db, snapshots: {keep: 0}}"), 0, 3*60 + 30, "/data/snapshots"},
		{"given", doc(head, "storage:", "  path: /data/m.db", "  snapshots: {keep: 30, at: '23:05', dir: /backup/snaps}"),
			30, 23*60 + 5, "/backup/snaps"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", c.file, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := cfg.Storage
			if s.SnapshotKeep() != c.keep || s.SnapshotAt() != c.at || s.SnapshotDir() != c.dir {
				t.Errorf("keep, at, dir = %d, %d, %s; want %d, %d, %s", s.SnapshotKeep(), s.SnapshotAt(), s.SnapshotDir(), c.keep, c.at, c.dir)
			}
		})
	}
}
