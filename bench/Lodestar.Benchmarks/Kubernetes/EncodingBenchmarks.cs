using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using Lodestar.Kubernetes.Api.Internal;
using Wire = Lodestar.Kubernetes.Protobuf;

namespace Lodestar.Benchmarks.Kubernetes;

/// <summary>
/// JSON against protobuf: decoding one watch event (a MODIFIED EndpointSlice of 100 endpoints) and one LIST answer
/// (100 such slices) into the models the source applies. <see cref="WireSizes"/> prints the bytes each takes on the wire.
/// </summary>
[MemoryDiagnoser]
public class EncodingBenchmarks
{
    private byte[] _jsonEvent = [];
    private byte[] _protobufFrame = [];
    private byte[] _jsonList = [];
    private byte[] _protobufList = [];

    [GlobalSetup]
    public void Setup()
    {
        var data = Encoded.Create();
        _jsonEvent = data.JsonEvent;
        _protobufFrame = data.ProtobufFrame[4..];
        _jsonList = data.JsonList;
        _protobufList = data.ProtobufList;
    }

    /// <summary>One JSON watch line into a WatchEvent.</summary>
    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Event")]
    public int DecodeEventJson() => JsonSerializer.Deserialize(_jsonEvent, KubernetesJsonContext.Default.WatchEvent)!.Object!.Endpoints!.Count;

    /// <summary>One protobuf watch frame (without its length prefix) into a WatchEvent.</summary>
    [Benchmark]
    [BenchmarkCategory("Event")]
    public int DecodeEventProtobuf() => KubernetesProtobuf.DecodeWatchEvent(_protobufFrame).Object!.Endpoints!.Count;

    /// <summary>One JSON LIST answer of 100 slices.</summary>
    [Benchmark]
    [BenchmarkCategory("List")]
    public int DecodeListJson() => JsonSerializer.Deserialize(_jsonList, KubernetesJsonContext.Default.EndpointSliceList)!.Items!.Count;

    /// <summary>One protobuf LIST answer of 100 slices.</summary>
    [Benchmark]
    [BenchmarkCategory("List")]
    public int DecodeListProtobuf() => KubernetesProtobuf.DecodeList(_protobufList).Items!.Count;

    /// <summary>Prints the wire size of an event and of a list in each encoding, plain and gzip-compressed.</summary>
    public static int WireSizes()
    {
        var data = Encoded.Create();
        Console.WriteLine("what                                   json bytes  json gzip  protobuf bytes  protobuf gzip");
        Print("watch event (1 slice x 100 endpoints)", data.JsonEvent.Length + 1, data.JsonEvent, data.ProtobufFrame);
        Print("list (100 slices x 100 endpoints)", data.JsonList.Length, data.JsonList, data.ProtobufList);
        return 0;

        static void Print(string what, int json, byte[] jsonBytes, byte[] protobuf)
            => Console.WriteLine($"{what,-38} {json,10}  {Gzip(jsonBytes),9}  {protobuf.Length,14}  {Gzip(protobuf),13}");
    }

    private static int Gzip(byte[] data)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return (int)buffer.Length;
    }

    /// <summary>The same event and list in both encodings, shaped as the API server sends them.</summary>
    private sealed record Encoded(byte[] JsonEvent, byte[] ProtobufFrame, byte[] JsonList, byte[] ProtobufList)
    {
        public static Encoded Create()
        {
            var slices = Enumerable.Range(0, 100).Select(i => WithLabels(SliceData.Slice(i, 100))).ToList();
            var jsonEvent = JsonSerializer.SerializeToUtf8Bytes(new WatchEvent { Type = "MODIFIED", Object = slices[0] }, KubernetesJsonContext.Default.WatchEvent);
            var jsonList = JsonSerializer.SerializeToUtf8Bytes(
                new EndpointSliceList { Metadata = new ListMeta { ResourceVersion = "123456" }, Items = slices }, KubernetesJsonContext.Default.EndpointSliceList);

            var watchEvent = new Wire.Meta.WatchEvent
            {
                Type = "MODIFIED",
                Object = new Wire.Runtime.RawExtension { Raw = ByteString.CopyFrom(Envelope("EndpointSlice", ToWire(slices[0]))) },
            };
            var body = watchEvent.ToByteArray();
            var frame = new byte[4 + body.Length];
            BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
            body.CopyTo(frame, 4);

            var list = new Wire.Discovery.EndpointSliceList { Metadata = new Wire.Meta.ListMeta { ResourceVersion = "123456" } };
            list.Items.AddRange(slices.Select(ToWire));
            return new Encoded(jsonEvent, frame, jsonList, Envelope("EndpointSliceList", list));
        }

        private static EndpointSlice WithLabels(EndpointSlice slice)
        {
            slice.Metadata!.Labels = new Dictionary<string, string>
            {
                ["kubernetes.io/service-name"] = "orders",
                ["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io",
            };
            return slice;
        }

        private static byte[] Envelope(string kind, IMessage message)
        {
            var unknown = new Wire.Runtime.Unknown
            {
                TypeMeta = new Wire.Runtime.TypeMeta { ApiVersion = "discovery.k8s.io/v1", Kind = kind },
                Raw = message.ToByteString(),
                ContentEncoding = "",
                ContentType = "",
            };
            return [.. "k8s\0"u8, .. unknown.ToByteArray()];
        }

        private static Wire.Discovery.EndpointSlice ToWire(EndpointSlice slice)
        {
            var result = new Wire.Discovery.EndpointSlice
            {
                Metadata = new Wire.Meta.ObjectMeta { Name = slice.Metadata!.Name, Namespace = slice.Metadata.Namespace, ResourceVersion = slice.Metadata.ResourceVersion },
                AddressType = slice.AddressType,
            };
            foreach (var (key, value) in slice.Metadata.Labels!)
            {
                result.Metadata.Labels[key] = value;
            }

            foreach (var port in slice.Ports!)
            {
                result.Ports.Add(new Wire.Discovery.EndpointPort { Name = port.Name, Port = port.Port!.Value, Protocol = port.Protocol });
            }

            foreach (var endpoint in slice.Endpoints!)
            {
                var item = new Wire.Discovery.Endpoint
                {
                    Conditions = new Wire.Discovery.EndpointConditions
                    {
                        Ready = endpoint.Conditions!.Ready!.Value,
                        Serving = endpoint.Conditions.Serving!.Value,
                        Terminating = endpoint.Conditions.Terminating!.Value,
                    },
                    NodeName = endpoint.NodeName,
                    Zone = endpoint.Zone,
                    Hints = new Wire.Discovery.EndpointHints(),
                    TargetRef = new Wire.Core.ObjectReference { Kind = endpoint.TargetRef!.Kind, Name = endpoint.TargetRef.Name, Namespace = endpoint.TargetRef.Namespace },
                };
                item.Addresses.AddRange(endpoint.Addresses!);
                item.Hints.ForZones.AddRange(endpoint.Hints!.ForZones!.Select(z => new Wire.Discovery.ForZone { Name = z.Name }));
                result.Endpoints.Add(item);
            }

            return result;
        }
    }
}
