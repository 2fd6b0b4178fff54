//go:build !linux

package nsmount

import "errors"

// Bind is only supported on Linux.
func Bind(src, target string) error {
	return errors.New("mounting the workspace needs Linux mount namespaces")
}
