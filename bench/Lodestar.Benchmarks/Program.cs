using BenchmarkDotNet.Running;
using Lodestar.Benchmarks.Dns;

namespace Lodestar.Benchmarks;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        // Macro scenarios that need real servers run as plain programs; everything else is BenchmarkDotNet.
        if (args.Length > 0 && args[0] == "dns-qps")
        {
            return await DnsQpsScenario.RunAsync(args[1..]);
        }

        if (args.Length > 0 && args[0] == "grpc-tail")
        {
            return await Grpc.GrpcTailScenario.RunAsync(args[1..]);
        }

        if (args.Length > 0 && args[0] == "k8s-wire-sizes")
        {
            return Kubernetes.EncodingBenchmarks.WireSizes();
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
