using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using Lodestar.Dns.Resolver.Internal;

namespace Lodestar.Benchmarks.Dns;

/// <summary>Cost of writing a query and parsing answers of 1 and 100 A records (compressed owner names).</summary>
[MemoryDiagnoser]
public class DnsMessageBenchmarks
{
    private byte[] _one = [];
    private byte[] _hundred = [];

    [GlobalSetup]
    public void Setup()
    {
        _one = Answer(1);
        _hundred = Answer(100);
    }

    [Benchmark]
    public byte[] WriteQuery() => DnsQueryWriter.Write(4242, "orders.shop.svc.cluster.local", DnsRecordType.A, 1232);

    [Benchmark]
    public int ParseOneRecord() => DnsMessageReader.Parse(_one).Answers.Count;

    [Benchmark]
    public int ParseHundredRecords() => DnsMessageReader.Parse(_hundred).Answers.Count;

    private static byte[] Answer(int records)
    {
        var query = DnsQueryWriter.Write(7, "orders.shop.svc.cluster.local", DnsRecordType.A, 0);
        var bytes = new List<byte>(query);
        bytes[2] = 0x81;
        bytes[3] = 0x80;
        bytes[6] = (byte)(records >> 8);
        bytes[7] = (byte)records;
        for (var i = 0; i < records; i++)
        {
            var rr = new byte[16];
            rr[0] = 0xC0;
            rr[1] = 12;
            rr[3] = 1;
            rr[5] = 1;
            BinaryPrimitives.WriteUInt32BigEndian(rr.AsSpan(6), 30);
            rr[11] = 4;
            rr[12] = 10;
            rr[14] = (byte)(i >> 8);
            rr[15] = (byte)i;
            bytes.AddRange(rr);
        }

        return [.. bytes];
    }
}
