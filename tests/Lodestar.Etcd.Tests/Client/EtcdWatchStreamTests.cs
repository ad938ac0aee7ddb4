using System.Buffers;
using System.Text;
using System.Text.Json;
using Lodestar.Etcd.Client.Internal;

namespace Lodestar.Etcd.Tests.Client;

public sealed class EtcdWatchStreamTests
{
    [Fact]
    public void TryReadObject_AnyChunking_CutsEachMessageWhenComplete()
    {
        // Two gateway messages, the second containing braces inside a string.
        const string Text = "{\"result\":{\"created\":true}}\n  {\"result\":{\"cancel_reason\":\"a}b{\"}}\n";
        var bytes = Encoding.UTF8.GetBytes(Text);
        for (var split = 1; split < bytes.Length; split++)
        {
            var found = new List<string>();
            var pending = new List<byte>();
            foreach (var part in new[] { bytes[..split], bytes[split..] })
            {
                pending.AddRange(part);
                var buffer = new ReadOnlySequence<byte>(pending.ToArray());
                while (EtcdWatchStream.TryReadObject(ref buffer, out var document))
                {
                    using (document)
                    {
                        found.Add(document.RootElement.GetRawText());
                    }
                }

                pending = buffer.ToArray().ToList();
            }

            Assert.Equal(2, found.Count);
            Assert.Contains("a}b{", found[1], StringComparison.Ordinal);
        }
    }

    [Fact]
    public void TryReadObject_NotAnObject_Throws()
    {
        var buffer = new ReadOnlySequence<byte>("[1]"u8.ToArray());
        Assert.Throws<JsonException>(() => EtcdWatchStream.TryReadObject(ref buffer, out _));
    }

    [Fact]
    public void PrefixEnd_Prefix_IsNextKey()
    {
        Assert.Equal("orders0"u8.ToArray(), EtcdClient.PrefixEnd("orders/"u8.ToArray()));
        Assert.Equal(new byte[] { 0x62 }, EtcdClient.PrefixEnd([0x61, 0xff]));
        Assert.Equal(new byte[] { 0 }, EtcdClient.PrefixEnd([0xff]));
    }
}
