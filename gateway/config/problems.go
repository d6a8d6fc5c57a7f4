package config

import "mallgrid/gateway/yamlcheck"

// Problem is one thing wrong with a configuration: where it is and what is
// wrong; it prints as "FILE:LINE: key: problem". Line is 0 when the value
// did not come from the file (an environment override) or the file has no
// line to point at; Key is empty for problems with the file as a whole
// (not YAML, empty).
type Problem = yamlcheck.Problem

// Problems is every problem found in one configuration. Load and Parse
// return it as a *Problems; it is never empty then. errors.As fills a
// Problems as well as a *Problems target.
type Problems = yamlcheck.Problems
