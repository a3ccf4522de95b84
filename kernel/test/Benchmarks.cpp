#include <lib/text/Format.h>
#include <lib/boot/Multiboot2.h>
#include <log/Log.h>
#include <module/Initramfs.h>
#include <module/ModuleLoader.h>
#include <module/ModuleRegistry.h>
#include <test/Benchmarks.h>
#include <time/Clock.h>

namespace benchmarks {

namespace {
void report(const char* name, u64 value_x1000, const char* unit)
{
    klog::console_printf("BENCH %s %llu.%03llu %s\n", name, (unsigned long long)(value_x1000 / 1000),
        (unsigned long long)(value_x1000 % 1000), unit);
}

void module_load(const char* name, const char* bench_name)
{
    if (!initramfs::is_available())
        return;
    char path[64];
    format(path, sizeof(path), "lib/modules/%s.ko", name);
    auto image = initramfs::root().read_file(path);
    if (image.is_error())
        return;
    constexpr int RUNS = 20;
    u64 load_total = 0, unload_total = 0;
    for (int i = 0; i < RUNS; ++i) {
        u64 t0 = clock::monotonic_ns();
        auto loaded = ModuleLoader::load(image.value(), {});
        u64 t1 = clock::monotonic_ns();
        if (loaded.is_error())
            return;
        (void)ModuleLoader::unload(StringView(name));
        u64 t2 = clock::monotonic_ns();
        load_total += t1 - t0;
        unload_total += t2 - t1;
    }
    char label[96];
    format(label, sizeof(label), "%s_load_us(%llu_bytes)", bench_name, (unsigned long long)image.value().size());
    report(label, load_total / RUNS, "us");
    format(label, sizeof(label), "%s_unload_us", bench_name);
    report(label, unload_total / RUNS, "us");
}
}

void run()
{
    klog::console_printf("BENCH begin (in-kernel, QEMU TCG: compare runs on the same host only)\n");
    module_load("bench_small", "module_small");
    module_load("bench_large", "module_large");
    if (initramfs::is_available()) {
        auto& s = initramfs::stats();
        // bytes/ns * 1e3 = MB/s; reported x1000 for three decimals.
        if (s.decode_ns)
            report("initramfs_zstd_decode_MBps", s.archive_bytes * 1000000ull / s.decode_ns, "MB/s");
        if (s.unpack_ns)
            report("initramfs_cpio_unpack_MBps", s.archive_bytes * 1000000ull / s.unpack_ns, "MB/s");
        report("initramfs_archive_KiB", s.archive_bytes * 1000 / 1024, "KiB");
    }
    klog::console_printf("BENCH end\n");
}

} // namespace benchmarks
