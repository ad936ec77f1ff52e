// Package bench holds the measurements of tickstash-bench: each runs tickstash's
// real code path against real servers, beside a reference measured in the same run on
// the same server, and reports both with their ratio as Markdown.
package bench
