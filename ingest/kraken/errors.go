package kraken

import "fmt"

func errorf(format string, args ...any) error {
	return fmt.Errorf("kraken: "+format, args...)
}
