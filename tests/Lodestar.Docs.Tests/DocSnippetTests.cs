namespace Lodestar.Docs.Tests;

public sealed class DocSnippetTests
{
    public static TheoryData<string> MarkdownFiles()
    {
        var data = new TheoryData<string>();
        data.Add("README.md");
        data.Add("samples/README.md");
        foreach (var path in Directory.GetFiles(Path.Combine(DocSnippets.RepositoryRoot, "docs"), "*.md").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetRelativePath(DocSnippets.RepositoryRoot, path));
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(MarkdownFiles))]
    public void CSharpBlocks_CompileAsShown(string file)
    {
        var failures = new List<string>();
        foreach (var (line, code) in DocSnippets.Read(file))
        {
            var (errors, _) = DocSnippets.Compile(code, $"{file}:{line}");
            failures.AddRange(errors.Take(5).Select(e => $"{file} block at line {line}: {e}"));
        }

        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    [Fact]
    public void Readme_HasACompiledQuickStartBlock()
    {
        Assert.NotEmpty(DocSnippets.Read("README.md"));
    }
}
