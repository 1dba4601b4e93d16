// Package gpiocdev is the kiosk's GPIO backend on the Linux GPIO character device
// (/dev/gpiochipN), through github.com/warthog618/go-gpiocdev. It is the default on Linux: the
// kernel does the bias, the active-low inversion and the debouncing, timestamps each edge when it
// happens, and queues edges for a reader that is busy; and it releases the lines of a process that
// dies, so a crashed daemon never leaves a line claimed.
//
// Lines are requested by offset on one chip (on a Raspberry Pi, gpiochip0 and the BCM number) or by
// name on whichever chip has that name ("GPIO17"), as gpiofind does. Errors name the chip and the
// line and say what the technician can do: a line another program holds (gpio.ErrBusy, with that
// program's label), a chip that does not exist or went away (gpio.ErrNoChip), a user outside the
// gpio group (gpio.ErrPermission).
//
// A chip that goes away while its lines are in use (a driver unbound, a USB expander unplugged)
// does not wake a waiting reader on every kernel, so an input waiting for an edge also checks its
// line every CheckInterval, and WaitForEdge returns gpio.ErrNoChip when the line is gone.
//
// The package builds on every OS, so that programs importing it still build for a developer's
// laptop; off Linux, Open returns ErrUnsupported.
package gpiocdev
