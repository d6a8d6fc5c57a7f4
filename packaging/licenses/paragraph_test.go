package main

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"
)

const apacheTerms = `
                                 Apache License
                           Version 2.0, January 2004
                        http://www.apache.org/licenses/

   TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION

   1. Definitions.
`

func TestWithoutApacheText(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       []string // in the result
		gone       []string // not in it
		apache     bool
	}{
		{
			name:   "whole terms and appendix",
			text:   apacheTerms + "   9. Accepting Warranty.\n\n   END OF TERMS AND CONDITIONS\n\n   APPENDIX: Copyright 2015 The Prometheus Authors\n",
			want:   []string{"/usr/share/common-licenses/Apache-2.0", "APPENDIX: Copyright 2015 The Prometheus Authors"},
			gone:   []string{"TERMS AND CONDITIONS FOR USE", "Accepting Warranty"},
			apache: true,
		},
		{
			name:   "terms cut short run to the end",
			text:   apacheTerms + "   9. Accepting Warranty.\n",
			want:   []string{"/usr/share/common-licenses/Apache-2.0"},
			gone:   []string{"TERMS AND CONDITIONS FOR USE", "Accepting Warranty"},
			apache: true,
		},
		{
			name: "another license beside it is kept",
			text: "Copyright (c) 2011 The Snappy-Go Authors.\nRedistribution and use in source and binary forms\n" +
				apacheTerms + "END OF TERMS AND CONDITIONS\nPermission is hereby granted, free of charge\n",
			want:   []string{"Snappy-Go", "Redistribution and use", "Permission is hereby granted", "common-licenses/Apache-2.0"},
			gone:   []string{"1. Definitions."},
			apache: true,
		},
		{
			name: "no Apache terms",
			text: "Copyright (c) 2013 Ben Johnson\n\nPermission is hereby granted, free of charge\n",
			want: []string{"Ben Johnson", "Permission is hereby granted"},
		},
	} {
		got, apache := withoutApacheText(c.text)
		if apache != c.apache {
			t.Errorf("%s: apache = %v; want %v", c.name, apache, c.apache)
		}
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: got\n%s\nwant %q in it", c.name, got, w)
			}
		}
		for _, g := range c.gone {
			if strings.Contains(got, g) {
				t.Errorf("%s: got\n%s\nwant no %q", c.name, got, g)
			}
		}
	}
}

func TestLicenseNames(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"Permission is hereby granted, free of charge, to any person", "Expat"},
		{"Redistribution and use in source and binary forms ... Neither the name of Google Inc.", "BSD-3-clause"},
		{"Redistribution and use in source and binary forms ... provided that", "BSD-2-clause"},
		{"Eclipse Public License - v 2.0 ... Redistribution and use in source and binary forms", "EPL-2.0 or BSD-3-clause"},
		{"Permission to use, copy, modify, and/or distribute this software", "ISC"},
		{"Licensed under the Apache License, Version 2.0 (the \"License\")", "Apache-2.0"},
		{"All rights reserved; ask us.", "unknown"},
	} {
		if got := licenseNames(c.text, false); got != c.want {
			t.Errorf("licenseNames(%q) = %q; want %q", c.text, got, c.want)
		}
	}
	if got := licenseNames("Permission is hereby granted, free of charge", true); got != "Apache-2.0 and Expat" {
		t.Errorf("Apache terms and an MIT text: %q; want Apache-2.0 and Expat", got)
	}
}

func TestParagraph(t *testing.T) {
	got := paragraph("vendor/go.etcd.io/bbolt/*", "the Go module go.etcd.io/bbolt v1.5.0", []notice{
		{name: "LICENSE", text: "The MIT License (MIT)\r\n\r\nCopyright (c) 2013 Ben Johnson\r\n\r\nPermission is hereby granted, free of charge\r\n\r\n"},
	})
	want := "Files: vendor/go.etcd.io/bbolt/*\n" +
		"Copyright: Copyright (c) 2013 Ben Johnson\n" +
		"License: Expat\n" +
		" The MIT License (MIT)\n .\n Copyright (c) 2013 Ben Johnson\n .\n Permission is hereby granted, free of charge\n" +
		"Comment: the Go module go.etcd.io/bbolt v1.5.0, linked into /usr/bin/mallgrid.\n"
	if got != want {
		t.Errorf("paragraph:\n%s\nwant\n%s", got, want)
	}

	got = paragraph("vendor/example.com/x/*", "the Go module example.com/x v1.0.0", []notice{
		{name: "NOTICE", text: "Copyright 2020 X\nThis product includes Y.\n"},
	})
	for _, w := range []string{"Copyright: Copyright 2020 X\n", "License: unspecified\n the Go module example.com/x v1.0.0 publishes no license", " NOTICE:\n .\n Copyright 2020 X\n This product includes Y.\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("paragraph of a module without a license:\n%s\nwant %q", got, w)
		}
	}
}

// TestRun_LinkedModules: the copyright file of this architecture's binary
// begins with packaging/copyright and has a paragraph with the license text
// of modules it links (bbolt, x/sys) and of Go itself.
func TestRun_LinkedModules(t *testing.T) {
	t.Chdir("../..")
	var out bytes.Buffer
	if err := run(&out, "packaging/copyright", "packaging/licenses/unlicensed.txt", runtime.GOARCH, ""); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.HasPrefix(got, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n") {
		t.Errorf("copyright begins %q; want packaging/copyright's header", got[:min(len(got), 100)])
	}
	for _, want := range []string{
		"\nFiles: vendor/go.etcd.io/bbolt/*\nCopyright: Copyright (c) 2013 Ben Johnson\nLicense: Expat\n",
		"\nFiles: vendor/golang.org/x/sys/*\n",
		"\nFiles: go/src/*\n",
		" PATENTS:\n",
		"/usr/share/common-licenses/Apache-2.0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("copyright has no %q", want)
		}
	}
	if strings.Contains(got, "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION") {
		t.Errorf("copyright holds the Apache License's whole text; want the pointer to common-licenses")
	}
}

// TestCheckLicense: a module with no license file, or one the tool does not
// recognise, is refused unless the allow-list names it at that version.
func TestCheckLicense(t *testing.T) {
	list, err := os.ReadFile("unlicensed.txt")
	if err != nil {
		t.Fatal(err)
	}
	allowed, err := unlicensedList(string(list))
	if err != nil {
		t.Fatal(err)
	}
	mit := []notice{{name: "LICENSE", text: "Copyright (c) 2020 X\n\nPermission is hereby granted, free of charge, to any person\n"}}
	odd := []notice{{name: "LICENSE", text: "You may do as you like, says X.\n"}}
	notes := []notice{{name: "NOTICE", text: "Copyright 2020 X\n"}}
	for _, tc := range []struct {
		path, version string
		notices       []notice
		want          string // in the error; "" for none
	}{
		{"example.com/mit", "v1.0.0", mit, ""},
		{"example.com/none", "v1.0.0", nil, "module example.com/none v1.0.0 has no license file"},
		{"example.com/notice", "v1.0.0", notes, "has no license file"},
		{"example.com/odd", "v1.0.0", odd, "a license file the tool does not recognise"},
		{"github.com/yeqown/reedsolomon", "v1.0.0", nil, ""},
		{"github.com/yeqown/reedsolomon", "v1.0.1", nil, "unlicensed.txt"},
		{"go/src", "go1.99", nil, "module go/src go1.99 has no license file"},
	} {
		err := checkLicense(tc.path, tc.version, tc.notices, allowed)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("checkLicense(%s %s) = %v; want %q", tc.path, tc.version, err, tc.want)
		}
	}
	if _, err := unlicensedList("example.com/x\n"); err == nil {
		t.Errorf("unlicensedList of a line without a version: nil error; want one")
	}
}
