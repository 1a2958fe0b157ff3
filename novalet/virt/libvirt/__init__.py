"""The libvirt virt driver (libvirt-python)."""
