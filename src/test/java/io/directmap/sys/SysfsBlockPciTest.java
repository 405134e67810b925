package io.directmap.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The PCI function behind a disk, from the resolved sysfs path of its device link. */
class SysfsBlockPciTest {
    @Test
    void aFourDigitDomainIsTheNearestFunction() {
        Path p = Path.of("/sys/devices/pci0000:00/0000:00:01.1/0000:01:00.0/nvme/nvme0");
        assertEquals(Optional.of("0000:01:00.0"), SysfsBlock.pciFunction(p));
    }

    @Test
    void aVmdDomainHasFiveDigitsAndItsFunctionIsFoundNotTheVmdController() {
        // An NVMe disk behind Intel VMD: the VMD endpoint 0000:00:0e.0 opens domain 10000.
        Path p = Path.of("/sys/devices/pci0000:00/0000:00:0e.0/pci10000:e0/10000:e0:06.0/10000:e1:00.0/nvme/nvme1");
        assertEquals(Optional.of("10000:e1:00.0"), SysfsBlock.pciFunction(p));
    }

    @Test
    void aVirtioDiskOnPciIsFoundAboveItsVirtioNode() {
        Path p = Path.of("/sys/devices/pci0000:00/0000:00:04.0/virtio1");
        assertEquals(Optional.of("0000:00:04.0"), SysfsBlock.pciFunction(p));
    }

    @Test
    void aPathWithNoFunctionHasNone() {
        assertEquals(Optional.empty(), SysfsBlock.pciFunction(Path.of("/sys/devices/virtual/block/loop0")));
        // a host bridge's directory (pci0000:00) and a bus number alone are not functions
        assertEquals(Optional.empty(), SysfsBlock.pciFunction(Path.of("/sys/devices/pci0000:00/0000:00")));
    }
}
