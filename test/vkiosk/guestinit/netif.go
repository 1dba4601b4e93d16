package main

import (
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// setUp gives an interface an IPv4 address (CIDR; empty: none) and brings it up, with the same
// ioctls ifconfig uses. No route is added: the hub is at QEMU's gateway address, inside the
// interface's own subnet.
func setUp(name, cidr string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("configure %s: socket: %w", name, err)
	}
	defer unix.Close(fd)

	if cidr != "" {
		ip, ipnet, err := net.ParseCIDR(cidr)
		if err != nil || ip.To4() == nil {
			return fmt.Errorf("configure %s: address %q is not an IPv4 CIDR", name, cidr)
		}
		for _, set := range []struct {
			req  uint
			addr []byte
			what string
		}{
			{unix.SIOCSIFADDR, ip.To4(), "address"},
			{unix.SIOCSIFNETMASK, net.IP(ipnet.Mask).To4(), "netmask"},
		} {
			ifr, err := unix.NewIfreq(name)
			if err != nil {
				return fmt.Errorf("configure %s: %w", name, err)
			}
			if err := ifr.SetInet4Addr(set.addr); err != nil {
				return fmt.Errorf("configure %s %s: %w", name, set.what, err)
			}
			if err := unix.IoctlIfreq(fd, set.req, ifr); err != nil {
				return fmt.Errorf("configure %s %s %v: %w", name, set.what, net.IP(set.addr), err)
			}
		}
	}

	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("configure %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("configure %s: read flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring %s up: %w", name, err)
	}
	return nil
}

// waitInterface waits for a network driver to register its interface: probing may finish after
// the module is loaded.
func waitInterface(name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat("/sys/class/net/" + name); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("network interface %s did not appear within %v (is its driver module loaded, and the NIC given to QEMU?)", name, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
