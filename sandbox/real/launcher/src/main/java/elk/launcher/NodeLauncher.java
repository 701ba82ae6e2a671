package elk.launcher;

import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.function.Supplier;

/**
 * Starts one real Elasticsearch 7.x or OpenSearch 2.x/3.x node in this JVM and keeps it running.
 *
 * <p>Usage: {@code java -cp node-launcher.jar:LIB/* elk.launcher.NodeLauncher HOME}. HOME holds
 * {@code config/elasticsearch.yml} (or {@code opensearch.yml}) written by the sandbox: cluster and
 * node name, roles, attributes, addresses, seed hosts, data path.
 *
 * <p>The server is reached through reflection, so one launcher jar serves every distribution and
 * version: which family runs is decided by which server jar is on the class path. The node is
 * built with its protected constructor and the HTTP (netty4) and reindex modules as class-path
 * plugins; that skips Bootstrap (no bootstrap checks, no security manager, no root refusal), which
 * is what lets a test run it from jars. A module class that is missing stops the launcher with
 * exit status 3 and its name: never a node that answers {@code GET /} but lacks {@code _reindex}.
 * Logging is configured from {@code HOME/config/log4j2.properties} (exit status 4 when it cannot
 * be), so the node's own account of itself (discovery, elections, recoveries) is in its log.
 */
public final class NodeLauncher {

    /** Exit status when the class path lacks a server class or a required module. */
    static final int MISSING_CLASS = 3;
    /** Exit status when log4j cannot be configured from HOME/config/log4j2.properties. */
    static final int NO_LOGGING = 4;

    private NodeLauncher() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: NodeLauncher HOME (HOME/config/elasticsearch.yml or opensearch.yml)");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        Family family = Family.detect();
        Path config = home.resolve("config");
        if (!Files.exists(config.resolve(family.configFile))) {
            System.err.println("missing " + config.resolve(family.configFile));
            System.exit(2);
        }
        long started = System.nanoTime();

        List<Class<?>> plugins = family.plugins();
        family.registerLogErrorListener();
        Object settings = family.settings(home);
        Object environment = family.environment(settings, config);
        family.configureLogging(environment);
        Object node = family.newNode(environment, plugins);

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.getClass().getMethod("close").invoke(node);
            } catch (ReflectiveOperationException e) {
                System.err.println("close failed: " + e);
            }
            stopped.countDown();
        }, "node-close"));

        invoke(node, "start");
        long millis = (System.nanoTime() - started) / 1_000_000;
        // One line the sandbox reads from the node's log: readiness is still checked over HTTP.
        System.out.println("LAUNCHER STARTED family=" + family.name + " plugins=" + names(plugins)
            + " start_ms=" + millis);
        System.out.flush();
        stopped.await(); // the node's own threads are daemons: keep the JVM alive
    }

    private static String names(List<Class<?>> classes) {
        List<String> out = new ArrayList<>();
        for (Class<?> c : classes) {
            out.add(c.getSimpleName());
        }
        return String.join(",", out);
    }

    static String cause(Throwable e) {
        Throwable c = e;
        while ((c instanceof java.lang.reflect.InvocationTargetException) && c.getCause() != null) {
            c = c.getCause();
        }
        return c.toString();
    }

    static void fail(int status, String message) {
        System.err.println(message);
        System.err.flush();
        System.exit(status);
    }

    static Object invoke(Object target, String method) throws ReflectiveOperationException {
        Method m = target.getClass().getMethod(method);
        return m.invoke(target);
    }

    static Class<?> require(String name, String why) {
        try {
            return Class.forName(name);
        } catch (ClassNotFoundException e) {
            System.err.println("LAUNCHER MISSING CLASS " + name + " (" + why + "): the class path lacks its jar");
            System.exit(MISSING_CLASS);
            throw new IllegalStateException(e);
        }
    }

    /** The names that differ between Elasticsearch and OpenSearch, and between their versions. */
    static final class Family {
        final String name;
        final String pkg;
        final String configFile;

        private Family(String name, String pkg, String configFile) {
            this.name = name;
            this.pkg = pkg;
            this.configFile = configFile;
        }

        static Family detect() {
            try {
                Class.forName("org.opensearch.node.Node");
                return new Family("opensearch", "org.opensearch", "opensearch.yml");
            } catch (ClassNotFoundException notOpenSearch) {
                require("org.elasticsearch.node.Node", "Elasticsearch or OpenSearch server jar");
                return new Family("elasticsearch", "org.elasticsearch", "elasticsearch.yml");
            }
        }

        Object settings(Path home) throws ReflectiveOperationException {
            Class<?> settingsClass = require(pkg + ".common.settings.Settings", "server");
            Object builder = settingsClass.getMethod("builder").invoke(null);
            Method put = builder.getClass().getMethod("put", String.class, String.class);
            put.invoke(builder, "path.home", home.toString());
            return builder.getClass().getMethod("build").invoke(builder);
        }

        /** Catches log4j status errors from before logging is configured (as Bootstrap does). */
        void registerLogErrorListener() {
            try {
                Class.forName(pkg + ".common.logging.LogConfigurator").getMethod("registerErrorListener").invoke(null);
            } catch (ReflectiveOperationException e) {
                fail(NO_LOGGING, "LAUNCHER LOGGING FAILED registerErrorListener: " + cause(e));
            }
        }

        /**
         * log4j from HOME/config/log4j2.properties (the sandbox writes it; the console appender goes
         * to the node's log file), as the distribution's start script would. Without it log4j's
         * default configuration prints ERROR only, and a node that cannot find its masters says
         * nothing. A failure here stops the node: a node nobody can read is not started.
         */
        void configureLogging(Object environment) {
            try {
                Class<?> lc = Class.forName(pkg + ".common.logging.LogConfigurator");
                Class<?> env = Class.forName(pkg + ".env.Environment");
                lc.getMethod("configure", env).invoke(null, environment);
            } catch (ReflectiveOperationException e) {
                fail(NO_LOGGING, "LAUNCHER LOGGING FAILED configure: " + cause(e));
            }
        }

        Object environment(Object settings, Path config) throws ReflectiveOperationException {
            Class<?> preparer = require(pkg + ".node.InternalSettingsPreparer", "server");
            Method prepare = preparer.getMethod("prepareEnvironment", settings.getClass(), Map.class, Path.class,
                Supplier.class);
            Supplier<String> defaultName = () -> "node";
            return prepare.invoke(null, settings, Collections.emptyMap(), config, defaultName);
        }

        /** HTTP/transport and reindex as class-path plugins; the first name that exists wins. */
        List<Class<?>> plugins() {
            List<Class<?>> out = new ArrayList<>();
            if (name.equals("opensearch")) {
                out.add(first("transport (netty4) module",
                    "org.opensearch.transport.Netty4ModulePlugin", "org.opensearch.transport.Netty4Plugin"));
                out.add(first("reindex module",
                    "org.opensearch.index.reindex.ReindexModulePlugin", "org.opensearch.index.reindex.ReindexPlugin"));
            } else {
                out.add(first("transport (netty4) module", "org.elasticsearch.transport.Netty4Plugin"));
                out.add(first("reindex module",
                    "org.elasticsearch.reindex.ReindexPlugin", "org.elasticsearch.index.reindex.ReindexPlugin"));
            }
            return out;
        }

        private static Class<?> first(String what, String... names) {
            for (String n : names) {
                try {
                    return Class.forName(n);
                } catch (ClassNotFoundException e) {
                    // try the next name
                }
            }
            require(names[0], what);
            return null;
        }

        Object newNode(Object environment, List<Class<?>> plugins) throws ReflectiveOperationException {
            Class<?> nodeClass = require(pkg + ".node.Node", "server");
            for (Constructor<?> c : nodeClass.getDeclaredConstructors()) {
                Class<?>[] p = c.getParameterTypes();
                if (p.length == 3 && Collection.class.isAssignableFrom(p[1]) && p[2] == boolean.class) {
                    c.setAccessible(true);
                    String generic = c.getGenericParameterTypes()[1].getTypeName();
                    Collection<?> arg = generic.contains("PluginInfo") ? pluginInfos(plugins) : plugins;
                    return c.newInstance(environment, arg, true);
                }
            }
            throw new IllegalStateException("no (Environment, Collection, boolean) constructor on " + nodeClass);
        }

        /** OpenSearch 3.1+ takes PluginInfo descriptors instead of classes. */
        private List<Object> pluginInfos(List<Class<?>> plugins) throws ReflectiveOperationException {
            Class<?> info = require(pkg + ".plugins.PluginInfo", "server");
            Class<?> version = require(pkg + ".Version", "server");
            Object current = version.getField("CURRENT").get(null);
            Constructor<?> make = info.getConstructor(String.class, String.class, String.class, version,
                String.class, String.class, List.class, boolean.class);
            List<Object> out = new ArrayList<>();
            for (Class<?> p : plugins) {
                out.add(make.newInstance(p.getName(), "classpath module", "NA", current,
                    System.getProperty("java.specification.version"), p.getName(), Collections.emptyList(), false));
            }
            return out;
        }
    }
}
