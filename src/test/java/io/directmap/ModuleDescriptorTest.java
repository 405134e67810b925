package io.directmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.lang.module.Configuration;
import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * What the module exports is a decision a reviewer sees: this test names every exported package,
 * and every other package as internal, so a new package fails here until someone chooses.
 * Read from the built descriptor (target/classes/module-info.class), not from the source.
 */
class ModuleDescriptorTest {
    /** A library user's and a driver writer's packages: the facade, the mapping contract, the importers and the bus they sit on. */
    static final Set<String> EXPORTED = Set.of("io.directmap", "io.directmap.mm", "io.directmap.device", "io.directmap.pci",
            "io.directmap.dmabuf");
    /** The implementation: may change without notice. */
    static final Set<String> INTERNAL = Set.of("io.directmap.block", "io.directmap.cli", "io.directmap.fault", "io.directmap.fs",
            "io.directmap.lang", "io.directmap.sys", "io.directmap.tools", "io.directmap.tools.bench", "io.directmap.tools.serve",
            "io.directmap.tools.torture", "io.directmap.serve");

    static Path classes() throws Exception {
        return Path.of(io.directmap.lang.Xorshift.class.getProtectionDomain().getCodeSource().getLocation().toURI());
    }

    static ModuleDescriptor descriptor() throws Exception {
        Path classes = classes(), info = classes.resolve("module-info.class");
        assertTrue(Files.isRegularFile(info), info + " is missing: src/main/java/module-info.java was not compiled");
        try (InputStream in = Files.newInputStream(info)) {
            return ModuleDescriptor.read(in, () -> packagesWithClasses(classes));
        }
    }

    /** The packages under dir that hold a .class file (package-info.class alone counts too). */
    static Set<String> packagesWithClasses(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> p.toString().endsWith(".class") && !p.getFileName().toString().equals("module-info.class"))
                    .map(p -> dir.relativize(p.getParent()).toString().replace('/', '.'))
                    .collect(Collectors.toCollection(TreeSet::new));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void exportsExactlyTheLibraryTheContractAndTheImporters() throws Exception {
        ModuleDescriptor d = descriptor();
        assertEquals("io.directmap", d.name());
        Set<String> expected = new TreeSet<>(EXPORTED);
        for (ModuleDescriptor.Exports e : d.exports()) {
            assertTrue(e.targets().isEmpty(), e + ": a qualified export; export to everyone or not at all");
        }
        assertEquals(expected, d.exports().stream().map(ModuleDescriptor.Exports::source).collect(Collectors.toCollection(TreeSet::new)),
                "exports in src/main/java/module-info.java");
    }

    @Test
    void everyPackageIsExportedOrNamedInternal() throws Exception {
        Set<String> undecided = new TreeSet<>(descriptor().packages());
        undecided.removeAll(EXPORTED);
        undecided.removeAll(INTERNAL);
        assertEquals(Set.of(), undecided, "new packages: export them in module-info.java (and EXPORTED here) or add them to INTERNAL");
    }

    @Test
    void picocliAloneMayReflectOnTheCommands() throws Exception {
        ModuleDescriptor d = descriptor();
        assertEquals(Set.of("io.directmap.cli -> [info.picocli]"),
                d.opens().stream().map(o -> o.source() + " -> " + new TreeSet<>(o.targets())).collect(Collectors.toSet()));
        assertTrue(!d.isOpen(), "the module is not open");
    }

    @Test
    void itsRequirementsResolveAgainstTheJarsItShipsWith() throws Exception {
        ModuleDescriptor d = descriptor();
        assertEquals(Set.of("java.base", "info.picocli", "com.google.gson", "jdk.jfr", "java.management", "jdk.management",
                        "io.netty.codec.http", "io.netty.codec", "io.netty.handler", "io.netty.transport", "io.netty.buffer", "io.netty.common",
                        "io.netty.transport.classes.epoll", "io.netty.transport.unix.common"),
                d.requires().stream().map(ModuleDescriptor.Requires::name).collect(Collectors.toSet()));
        java.util.List<Path> jars = new java.util.ArrayList<>(java.util.List.of(classes(), jarOf(picocli.CommandLine.class),
                jarOf(com.google.gson.Gson.class)));
        jars.addAll(nettyJars());
        ModuleFinder finder = ModuleFinder.of(jars.toArray(Path[]::new));
        Configuration c = ModuleLayer.boot().configuration().resolve(finder, ModuleFinder.of(), Set.of("io.directmap"));
        assertTrue(c.findModule("io.directmap").isPresent() && c.findModule("com.google.gson").isPresent()
                && c.findModule("io.netty.codec.http").isPresent());
    }

    /** The Netty jars dmap serve needs (each a named module). */
    static java.util.List<Path> nettyJars() throws Exception {
        java.util.List<Path> out = new java.util.ArrayList<>();
        for (Class<?> c : java.util.List.of(io.netty.handler.codec.http.HttpServerCodec.class, io.netty.handler.codec.ByteToMessageDecoder.class,
                io.netty.handler.timeout.IdleStateHandler.class, io.netty.channel.Channel.class, io.netty.buffer.ByteBuf.class,
                io.netty.util.ReferenceCounted.class, io.netty.channel.epoll.Epoll.class, io.netty.channel.unix.UnixChannel.class,
                io.netty.resolver.AddressResolver.class)) {
            out.add(jarOf(c));
        }
        return out;
    }

    static Path jarOf(Class<?> c) throws Exception {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
    }
}
