using System.Text.Json;
using Lodestar.Discovery;
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

    /// <summary>
    /// The protobuf decoder: the input read whole as a LIST answer (the <c>k8s\0</c> envelope around an
    /// EndpointSliceList), then as a watch stream of length-prefixed frames (a tiny first buffer, a 1 MiB frame cap),
    /// each frame decoded as a WatchEvent; readable slices are applied to a merger, as the source applies them. A list or
    /// a frame that cannot be decoded is refused or skipped by the source (<see cref="InvalidDataException"/>), and a
    /// frame announcing more than the cap ends the stream (<see cref="RegistryResponseTooLargeException"/>).
    /// </summary>
    public static readonly FuzzTarget Protobuf = new(
        "kubernetes-protobuf",
        "Kubernetes protobuf: EndpointSliceList envelopes and watch frames, and the slice merger",
        static input =>
        {
            var merger = new EndpointSliceMerger(portName: null);
            var problems = new List<string>();
            try
            {
                var list = KubernetesProtobuf.DecodeList(input);
                var readable = (list.Items ?? []).Where(static s => s is not null && EndpointSliceMerger.Validate(s) is null).ToList();
                merger.ReplaceAll(readable, problems);
                _ = merger.Current.Count;
            }
            catch (InvalidDataException)
            {
            }

            using var reader = new WatchFrameReader(new MemoryStream(input, writable: false), maxFrameBytes: 1 << 20, description: "fuzz");
            while (true)
            {
                var (ok, frame, _) = reader.ReadEventAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
                if (!ok)
                {
                    break;
                }

                WatchEvent watchEvent;
                try
                {
                    watchEvent = KubernetesProtobuf.DecodeWatchEvent(frame.Span);
                }
                catch (InvalidDataException)
                {
                    continue;
                }

                switch (watchEvent.Type)
                {
                    case "ADDED" or "MODIFIED" when watchEvent.Object is { } slice && EndpointSliceMerger.Validate(slice) is null:
                        merger.Apply(slice, problems);
                        break;
                    case "DELETED" when watchEvent.Object is { } slice:
                        merger.Remove(slice.Metadata?.Name ?? "");
                        break;
                    case "ERROR":
                        _ = (watchEvent.Object?.Code, watchEvent.Object?.Reason, watchEvent.Object?.Message);
                        break;
                }

                _ = merger.Current.Count;
            }
        },
        typeof(RegistryResponseTooLargeException));

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
