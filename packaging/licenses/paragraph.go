package main

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// apacheText is where the Apache License 2.0's own text starts and ends in
// a LICENSE file; between them is what /usr/share/common-licenses holds.
var (
	apacheStart = regexp.MustCompile(`(?m)^[ \t]*Apache License[ \t]*\r?\n[ \t]*Version 2\.0, January 2004`)
	apacheEnd   = regexp.MustCompile(`(?m)^[ \t]*END OF TERMS AND CONDITIONS[ \t]*$`)
)

// apachePointer stands in the copyright file for the Apache License's text.
const apachePointer = "[The Apache License, Version 2.0: on Debian systems its complete text\n" +
	"is in /usr/share/common-licenses/Apache-2.0.]"

// withoutApacheText returns text with the Apache License 2.0's own terms
// replaced by apachePointer, and whether it held them; what else the file
// says (a NOTICE, an appendix, another license beside it) is kept. Terms
// without their closing line (spf13/cobra's copy stops at section 9) run
// to the end of the file.
func withoutApacheText(text string) (string, bool) {
	start := apacheStart.FindStringIndex(text)
	if start == nil {
		return text, false
	}
	rest := ""
	if end := apacheEnd.FindStringIndex(text[start[0]:]); end != nil {
		rest = text[start[0]+end[1]:]
	}
	return text[:start[0]] + apachePointer + rest, true
}

// licenseNames names, as DEP5 does, the licenses a license file holds (some
// hold more than one: klauspost/compress has Apache-2.0, BSD and MIT
// texts), joined with "and"; "unknown" when none is recognised.
func licenseNames(text string, apache bool) string {
	var names []string
	has := func(s string) bool { return strings.Contains(text, s) }
	if apache || has("Licensed under the Apache License, Version 2.0") {
		names = append(names, "Apache-2.0")
	}
	if has("Eclipse Public License") {
		// Paho's: EPL-2.0, or the Eclipse Distribution License (BSD-3).
		names = append(names, "EPL-2.0 or BSD-3-clause")
	}
	if has("Permission is hereby granted, free of charge") {
		names = append(names, "Expat")
	}
	if has("Permission to use, copy, modify, and/or distribute") {
		names = append(names, "ISC")
	}
	if has("Mozilla Public License") {
		names = append(names, "MPL-2.0")
	}
	if has("Redistribution and use in source and binary forms") && !has("Eclipse Public License") {
		lower := strings.ToLower(text)
		if strings.Contains(lower, "neither the name") || strings.Contains(lower, "names of its contributors") ||
			strings.Contains(lower, "name of the copyright holder") {
			names = append(names, "BSD-3-clause")
		} else {
			names = append(names, "BSD-2-clause")
		}
	}
	if len(names) == 0 {
		return "unknown"
	}
	return strings.Join(names, " and ")
}

// copyrightLine is a line that states a copyright: "Copyright (c) 2014 …",
// "Copyright 2009 The Go Authors", "© 2012 …".
var copyrightLine = regexp.MustCompile(`(?i)^[ \t]*(copyright|\(c\)|©)[ \t]*(\(c\)|©|[0-9])`)

// holders are the copyright lines of the texts, once each, in the order
// first met.
func holders(notices []notice) []string {
	var lines []string
	seen := map[string]bool{}
	for _, n := range notices {
		for _, l := range strings.Split(n.text, "\n") {
			l = strings.TrimSpace(l)
			if copyrightLine.MatchString(l) && !seen[l] {
				seen[l] = true
				lines = append(lines, l)
			}
		}
	}
	return lines
}

// paragraph is one DEP5 Files paragraph: the code at files (a pattern),
// called what, with its license (the first notice) and its other notices.
// A module with no license file gets "License: unspecified" and says so.
func paragraph(files, what string, notices []notice) string {
	var b strings.Builder
	b.WriteString("Files: " + files + "\n")
	if hs := holders(notices); len(hs) > 0 {
		b.WriteString("Copyright: " + strings.Join(hs, "\n ") + "\n")
	} else {
		b.WriteString("Copyright: the authors of " + what + " (its license names none)\n")
	}
	var others []notice
	if !hasLicense(notices) {
		b.WriteString("License: unspecified\n " + what + " publishes no license with its source.\n")
		others = notices
	} else {
		text, apache := withoutApacheText(notices[0].text)
		b.WriteString("License: " + licenseNames(text, apache) + "\n")
		b.WriteString(continuation(text))
		others = notices[1:]
	}
	b.WriteString("Comment: " + what + ", linked into /usr/bin/mallgrid.\n")
	sort.SliceStable(others, func(i, j int) bool { return others[i].name < others[j].name })
	for _, n := range others {
		text, _ := withoutApacheText(n.text)
		b.WriteString(" .\n " + n.name + ":\n .\n")
		b.WriteString(continuation(text))
	}
	return b.String()
}

// hasLicense reports whether notices begin with a license file.
func hasLicense(notices []notice) bool {
	return len(notices) > 0 && noticeKind(notices[0].name) == "license"
}

// licenseName is the License field paragraph writes for notices:
// "unspecified" without a license file, "unknown" for one not recognised.
func licenseName(notices []notice) string {
	if !hasLicense(notices) {
		return "unspecified"
	}
	text, apache := withoutApacheText(notices[0].text)
	return licenseNames(text, apache)
}

// unlicensedList reads the allow-list of modules linked without a license
// the tool recognises (unlicensed.txt): "MODULE VERSION" a line, # comments.
func unlicensedList(text string) (map[string]bool, error) {
	allowed := map[string]bool{}
	for i, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want MODULE VERSION, got %q", i+1, l)
		}
		allowed[f[0]+" "+f[1]] = true
	}
	return allowed, nil
}

// checkLicense refuses a module (path and version; Go's own as "go/src")
// whose notices hold no license or one not recognised, unless allowed
// lists it: its copyright paragraph would say "unspecified" or "unknown",
// and a package must not ship code it may not be allowed to.
func checkLicense(path, version string, notices []notice, allowed map[string]bool) error {
	name := licenseName(notices)
	if name != "unspecified" && !strings.Contains(name, "unknown") {
		return nil
	}
	if allowed[path+" "+version] {
		return nil
	}
	what := "no license file"
	if name != "unspecified" {
		what = "a license file the tool does not recognise"
	}
	return fmt.Errorf("module %s %s has %s: upgrade it to a version with one, or add \"%s %s\" to packaging/licenses/unlicensed.txt with why it may be shipped", path, version, what, path, version)
}

// continuation is text as the continuation lines of a field: each line
// after one space, an empty line as " .", without carriage returns or the
// blank lines at either end.
func continuation(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	lines := strings.Split(text, "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	var b strings.Builder
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l == "" {
			b.WriteString(" .\n")
		} else {
			b.WriteString(" " + l + "\n")
		}
	}
	return b.String()
}
