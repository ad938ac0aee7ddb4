using System.Buffers;
using System.Text.Json;
using Lodestar.Diagnostics;

namespace Lodestar.AspNetCore.Admin.Internal;

/// <summary>
/// Writes the registered <see cref="ILodestarStatusSection"/>s as one JSON object by name. Each section writes into its
/// own buffer first, so a section that throws, writes invalid JSON or too much is shown as an error without breaking the
/// rest; every string (names and values) goes through the view's cleaning (redaction, URI user-info).
/// </summary>
internal static class AdminSections
{
    /// <summary>The most bytes one section may write.</summary>
    internal const int MaxSectionBytes = 1024 * 1024;

    /// <summary>The deepest nesting a section may write.</summary>
    internal const int MaxDepth = 16;

    public static void Write(Utf8JsonWriter writer, IEnumerable<ILodestarStatusSection> sections, Func<string, string> clean)
    {
        writer.WriteStartObject();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var section in sections)
        {
            var name = clean(SafeName(section));
            var unique = name;
            for (var i = 2; !names.Add(unique); i++)
            {
                unique = name + " (" + i.ToString(System.Globalization.CultureInfo.InvariantCulture) + ")";
            }

            writer.WritePropertyName(unique);
            WriteSection(writer, section, unique, clean);
        }

        writer.WriteEndObject();
    }

    private static string SafeName(ILodestarStatusSection section)
    {
        try
        {
            return string.IsNullOrWhiteSpace(section.Name) ? section.GetType().Name : section.Name;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return section.GetType().Name;
        }
    }

    private static void WriteSection(Utf8JsonWriter writer, ILodestarStatusSection section, string name, Func<string, string> clean)
    {
        var buffer = new ArrayBufferWriter<byte>();
        string error;
        try
        {
            using (var sectionWriter = new Utf8JsonWriter(buffer, new JsonWriterOptions { MaxDepth = MaxDepth }))
            {
                section.WriteTo(sectionWriter);
            }

            if (buffer.WrittenCount > MaxSectionBytes)
            {
                error = $"The section '{name}' wrote {buffer.WrittenCount} bytes, more than the {MaxSectionBytes} allowed.";
            }
            else
            {
                using var document = JsonDocument.Parse(buffer.WrittenMemory, new JsonDocumentOptions { MaxDepth = MaxDepth });
                WriteClean(writer, document.RootElement, clean);
                return;
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            error = $"The section '{name}' failed: {ex.GetType().Name}: {ex.Message}";
        }

        writer.WriteStartObject();
        writer.WriteString("error", clean(error));
        writer.WriteEndObject();
    }

    private static void WriteClean(Utf8JsonWriter writer, JsonElement element, Func<string, string> clean)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in element.EnumerateObject())
                {
                    writer.WritePropertyName(clean(property.Name));
                    WriteClean(writer, property.Value, clean);
                }

                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray())
                {
                    WriteClean(writer, item, clean);
                }

                writer.WriteEndArray();
                break;
            case JsonValueKind.String:
                writer.WriteStringValue(clean(element.GetString()!));
                break;
            default:
                element.WriteTo(writer);
                break;
        }
    }
}
