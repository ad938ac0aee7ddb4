using System.Text.Json.Nodes;
using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Testing.Kubernetes;

namespace Lodestar.Kubernetes.Tests.Api;

/// <summary>
/// The seeds of the <c>kubernetes-protobuf</c> fuzz target are what the fake API server's encoder writes: a list
/// envelope, an empty list, and watch streams of every event type. This test checks the files decode to what the
/// encoder was given; with <c>LODESTAR_WRITE_FUZZ_SEEDS=1</c> it writes them first (after a change to the encoder).
/// The bytes are not compared: the encoder's output is not byte-stable (the fake slice carries generated fields).
/// </summary>
public sealed class ProtobufFuzzSeedTests
{
    private static readonly string s_folder = Path.Combine(RepositoryRoot(), "tests", "Lodestar.Fuzz", "Corpus", "kubernetes-protobuf");

    [Fact]
    public void Seeds_WrittenByTheFakeServersEncoder_DecodeToEveryEventType()
    {
        var seeds = Seeds();
        if (Environment.GetEnvironmentVariable("LODESTAR_WRITE_FUZZ_SEEDS") == "1")
        {
            Directory.CreateDirectory(s_folder);
            foreach (var (name, bytes) in seeds)
            {
                File.WriteAllBytes(Path.Combine(s_folder, name), bytes);
            }
        }

        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var name in seeds.Keys)
        {
            var path = Path.Combine(s_folder, name);
            Assert.True(File.Exists(path), $"{name} is missing from the corpus; run this test with LODESTAR_WRITE_FUZZ_SEEDS=1");
            files[name] = File.ReadAllBytes(path);
        }

        // The seeds reach the decoders' depths: a list with its slices, and every frame of each stream.
        var list = KubernetesProtobuf.DecodeList(files["seed-list"]);
        Assert.Equal(["orders-a", "orders-b"], list.Items!.Select(static i => i.Metadata!.Name!).ToArray());
        Assert.Equal("41", list.Metadata!.ResourceVersion);
        Assert.Empty(KubernetesProtobuf.DecodeList(files["seed-list-empty"]).Items ?? []);
        var types = Frames(files["seed-watch"]).Select(static f => KubernetesProtobuf.DecodeWatchEvent(f).Type ?? "").ToArray();
        Assert.Equal(["ADDED", "MODIFIED", "BOOKMARK", "DELETED", "ERROR"], types);
        var error = KubernetesProtobuf.DecodeWatchEvent(Frames(files["seed-watch-error"]).Single());
        Assert.Equal(("ERROR", 500), (error.Type, error.Object!.Code));
    }

    private static Dictionary<string, byte[]> Seeds()
    {
        var a = FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.1", pod: "orders-1"), FakeEndpoint.TerminatingAt("10.0.0.2"));
        var b = FakeEndpointSlice.Create("shop", "orders-b", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.3") with { Zone = "zone-a", NodeName = "node-1", HintZones = ["zone-a"] });
        var list = new JsonObject
        {
            ["kind"] = "EndpointSliceList",
            ["apiVersion"] = "discovery.k8s.io/v1",
            ["metadata"] = new JsonObject { ["resourceVersion"] = "41", ["continue"] = "next-page" },
            ["items"] = new JsonArray(Object(a, 40), Object(b, 41)),
        };
        var empty = new JsonObject { ["metadata"] = new JsonObject { ["resourceVersion"] = "7" }, ["items"] = new JsonArray() };
        var bookmark = new JsonObject
        {
            ["type"] = "BOOKMARK",
            ["object"] = new JsonObject { ["kind"] = "EndpointSlice", ["apiVersion"] = "discovery.k8s.io/v1", ["metadata"] = new JsonObject { ["resourceVersion"] = "44" } },
        }.ToJsonString();
        return new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["seed-list"] = FakeProtobuf.List(list),
            ["seed-list-empty"] = FakeProtobuf.List(empty),
            ["seed-watch"] =
            [
                .. FakeProtobuf.Frame(FakeKubernetesApiServer.EventLine("ADDED", a, 42)),
                .. FakeProtobuf.Frame(FakeKubernetesApiServer.EventLine("MODIFIED", b, 43)),
                .. FakeProtobuf.Frame(bookmark),
                .. FakeProtobuf.Frame(FakeKubernetesApiServer.EventLine("DELETED", a, 45)),
                .. FakeProtobuf.Frame(ErrorLine(410, "Expired", "too old resource version: 1 (40)")),
            ],
            ["seed-watch-error"] = FakeProtobuf.Frame(ErrorLine(500, "InternalError", "etcdserver: request timed out")),
        };
    }

    private static JsonObject Object(FakeEndpointSlice slice, long resourceVersion)
        => (JsonObject)JsonNode.Parse(FakeKubernetesApiServer.EventLine("ADDED", slice, resourceVersion))!["object"]!.DeepClone();

    private static string ErrorLine(int code, string reason, string message)
        => new JsonObject
        {
            ["type"] = "ERROR",
            ["object"] = new JsonObject { ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Failure", ["message"] = message, ["reason"] = reason, ["code"] = code },
        }.ToJsonString();

    private static IEnumerable<byte[]> Frames(byte[] stream)
    {
        using var reader = new WatchFrameReader(new MemoryStream(stream, writable: false), 1 << 20, "seed");
        while (reader.ReadEventAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult() is (true, var frame, _))
        {
            yield return frame.ToArray();
        }
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Lodestar.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("Lodestar.slnx not found above " + AppContext.BaseDirectory);
    }
}
