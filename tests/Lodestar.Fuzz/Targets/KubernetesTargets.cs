using System.Text.Json;
using Lodestar.Kubernetes;
using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Discovery.Internal;

namespace Lodestar.Fuzz.Targets;

internal static class KubernetesTargets
{
    private static readonly string s_kubeconfigPath = Path.Combine(Path.GetTempPath(), $"lodestar-fuzz-kubeconfig-{Environment.ProcessId}");

    /// <summary>
    /// An EndpointSlice watch response: split into lines as it streams (a tiny first buffer so lines cross buffer
    /// boundaries), each line decoded as a watch event and applied to the merger, as the source does. A line that is
    /// not JSON is skipped by the source, so it is here.
    /// </summary>
    public static readonly FuzzTarget WatchLines = new(
        "kubernetes-watch",
        "Kubernetes EndpointSlice watch streams (JSON lines) and the slice merger",
        static input =>
        {
            var merger = new EndpointSliceMerger(portName: null);
            var problems = new List<string>();
            using var reader = new WatchLineReader(new MemoryStream(input, writable: false), initialBufferSize: 16);
            while (true)
            {
                var (ok, line, _) = reader.ReadLineAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
                if (!ok)
                {
                    break;
                }

                WatchEvent? watchEvent;
                try
                {
                    watchEvent = JsonSerializer.Deserialize(line.Span, KubernetesJsonContext.Default.WatchEvent);
                }
                catch (JsonException)
                {
                    continue;
                }

                switch (watchEvent?.Type)
                {
                    case "ADDED" or "MODIFIED" when watchEvent.Object is { } slice:
                        merger.Apply(slice, problems);
                        break;
                    case "DELETED" when watchEvent.Object is { } slice:
                        merger.Remove(slice.Metadata?.Name ?? "");
                        break;
                }

                _ = merger.Current.Count;
            }
        });

    /// <summary>A kubeconfig file, loaded as the source loads it (current context, files it names, credentials).</summary>
    public static readonly FuzzTarget Kubeconfig = new(
        "kubeconfig",
        "kubeconfig files (YAML) as KubeconfigLoader reads them",
        static input =>
        {
            File.WriteAllBytes(s_kubeconfigPath, input);
            KubeconfigLoader.Load([s_kubeconfigPath], contextName: null);
        },
        typeof(KubernetesApiException));
}
