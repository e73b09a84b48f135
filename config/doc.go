// Package config parses, defaults and validates tailguard's YAML. It builds
// nothing.
//
// Load and Parse turn a file into a *Config in four steps: the YAML is
// parsed into a tree, the tree is checked against the schema (unknown and
// duplicate keys, wrong kinds, bad units and unknown words such as a
// balance policy), the tree is decoded into typed values, and then
// defaults are applied and Validate runs. Every problem is an *Error that
// reads "FILE:LINE:COL: path: message", the form `tailguard validate`
// prints, and all problems of a file are reported together in file order.
//
// Overrides, EnvOverrides and Quick lay the command line and TAILGUARD_*
// environment over a file (precedence: defaults < file < environment <
// flags). Redacted gives the copy the admin /config endpoint may show.
package config
